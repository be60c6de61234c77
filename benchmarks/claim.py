"""How long claiming a batch of 100 due follow-ups takes with 10,000 and with 1,000,000 rows.

The table holds what a busy year leaves behind: mostly completed follow-ups, some
scheduled for later, and a steady few due now. Each measured claim is followed (not
timed) by marking the batch sent, as the dispatcher does, so every claim meets the
same kind of table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text, update

from bot.clock import FrozenClock
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import load_policy
from bot.scheduling.followups import FollowUpDispatcher
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.models import FollowUp, Merchant

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
BATCH = 100
ROUNDS = 30
MERCHANTS = 5_000


class NullMessenger:
    async def send(self, chat_id: int, payload: dict[str, Any]) -> int | None:
        return None


def row(i: int, count: int) -> dict[str, Any]:
    """Row i of a table of `count`: a few due now, a tenth scheduled later, the rest done."""
    due = max(BATCH * (ROUNDS + 5), count // 200)
    if i < due:
        status, send_at = "scheduled", NOW - timedelta(minutes=i % 600)
    elif i < due + count // 10:
        status, send_at = "scheduled", NOW + timedelta(hours=1 + i % 2000)
    else:
        status, send_at = "completed", NOW - timedelta(days=1 + i % 365)
    return {
        "kind": "routine",
        "form_key": "routine",
        "merchant_id": 1 + i % MERCHANTS,
        "source_key": f"bench:{i}",
        "status": status,
        "send_at": send_at,
        "window_end": send_at + timedelta(days=3),
        "estimated": False,
        "attempts": 0,
        "created_at": NOW,
    }


async def fill(url: str, count: int) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            merchants = [
                {
                    "name": f"shop {m}",
                    "invite_code": f"c{m}",
                    "key_account": False,
                    "routine_opt_out": False,
                    "unreachable": False,
                    "created_at": NOW,
                }
                for m in range(1, MERCHANTS + 1)
            ]
            await connection.execute(insert(Merchant), merchants)
            step = 50_000
            for start in range(0, count, step):
                chunk = [row(i, count) for i in range(start, min(start + step, count))]
                await connection.execute(insert(FollowUp), chunk)
                print(f"  {start + len(chunk):>9,} rows", file=sys.stderr, end="\r")
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    print(file=sys.stderr)


async def measure(url: str) -> float:
    engine = create_engine(url)
    sessions = session_factory(engine)
    policy = load_policy()
    dispatcher = FollowUpDispatcher(
        sessions, NullMessenger(), FrozenClock(NOW), policy, WorkCalendar.from_policy(policy), staff_chat_id=None
    )
    timings = []
    try:
        for _ in range(ROUNDS):
            started = time.perf_counter()
            claimed = await dispatcher.claim(BATCH)
            timings.append((time.perf_counter() - started) * 1000)
            assert len(claimed) == BATCH, len(claimed)
            async with sessions() as session, session.begin():
                await session.execute(
                    update(FollowUp)
                    .where(FollowUp.id.in_([c.id for c in claimed]))
                    .values(status="sent", lease_until=None)
                )
    finally:
        await engine.dispose()
    return statistics.median(timings)


async def on_sqlite(count: int, folder: Path) -> float:
    url = f"sqlite+aiosqlite:///{folder / f'claim-{count}.sqlite3'}"
    await upgrade_async(url)
    await fill(url, count)
    return await measure(url)


async def on_postgres(base: str, count: int) -> float | None:
    import asyncpg
    from sqlalchemy.engine import make_url

    admin = make_url(base)
    name = f"posbot_bench_{uuid.uuid4().hex[:8]}"
    try:
        connection = await asyncpg.connect(
            host=admin.host, port=admin.port or 5432, user=admin.username, database=admin.database, timeout=5
        )
    except Exception as exc:
        print(f"PostgreSQL not reachable ({type(exc).__name__}); SQLite only", file=sys.stderr)
        return None
    await connection.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        await fill(url, count)
        return await measure(url)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks claim")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"bench": "claim", "rows_small": args.small, "rows_large": args.large}
    with tempfile.TemporaryDirectory() as folder:
        print(f"SQLite, {args.small:,} rows", file=sys.stderr)
        small = await on_sqlite(args.small, Path(folder))
        print(f"SQLite, {args.large:,} rows", file=sys.stderr)
        large = await on_sqlite(args.large, Path(folder))
    result.update(ms_small=round(small, 2), ms_large=round(large, 2), ratio=round(large / small, 2))
    if not args.no_pg:
        print(f"PostgreSQL, {args.small:,} rows", file=sys.stderr)
        pg_small = await on_postgres(args.pg, args.small)
        if pg_small is not None:
            print(f"PostgreSQL, {args.large:,} rows", file=sys.stderr)
            pg_large = await on_postgres(args.pg, args.large)
            assert pg_large is not None
            result["postgresql"] = {
                "ms_small": round(pg_small, 2),
                "ms_large": round(pg_large, 2),
                "ratio": round(pg_large / pg_small, 2),
            }
    return result
