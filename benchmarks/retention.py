"""The daily retention purge on a sample: what a bot saying 1,000 messages a day leaves in 100 days.

Prints the rows each category purged, the purge's seconds, and the longest single batch (the longest any
one transaction held its locks), on SQLite and (when reachable) PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bot.clock import FrozenClock
from bot.domain.retention import RetentionPolicy
from bot.services.retention import Retention
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.models import Conversation, OutboxMessage, ProcessedUpdate, StaffAudit

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PG_URL = os.environ.get("POSBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _rows(days: int, per_day: int) -> dict[Any, list[dict[str, Any]]]:
    outbox, updates, conversations, reveals = [], [], [], []
    for i in range(days * per_day):
        at = NOW - timedelta(days=i / per_day)
        outbox.append(
            {
                "chat_id": 1_000 + i % 500,
                "payload": {
                    "text": f"Your ticket R-2026-{i:06d}: call +861381234{i % 10_000:04d}",
                    "reply_markup": None,
                },
                "purpose": "reply",
                "status": "sent",
                "attempts": 1,
                "created_at": at,
                "sent_at": at,
            }
        )
        updates.append({"update_id": i, "processed_at": at})
    for i in range(5_000):
        at = NOW - timedelta(days=i % 90)
        conversations.append(
            {
                "telegram_user_id": 10_000 + i,
                "chat_id": 10_000 + i,
                "locale": "en",
                "locale_chosen": False,
                "state": {"form": "repair", "answers": {"description": "jams"}} if i % 2 else None,
                "revision": 1,
                "updated_at": at,
            }
        )
    for i in range(2_000):
        reveals.append(
            {
                "at": NOW - timedelta(days=i % 730),
                "telegram_user_id": 900_001,
                "action": "phone_revealed",
                "subject": f"ticket:{i}",
                "detail": {},
            }
        )
    return {OutboxMessage: outbox, ProcessedUpdate: updates, Conversation: conversations, StaffAudit: reveals}


async def _measure(url: str, days: int, per_day: int, batch: int) -> dict[str, Any]:
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            for model, rows in _rows(days, per_day).items():
                for start in range(0, len(rows), 5_000):
                    await session.execute(insert(model), rows[start : start + 5_000])
        retention = Retention(sessions, FrozenClock(NOW), RetentionPolicy(batch_size=batch))
        started = time.perf_counter()
        preview = await retention.purge(dry_run=True)
        dry_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = await retention.purge()
        seconds = time.perf_counter() - started
        assert preview.counts == report.counts
        return {
            "purged": report.counts,
            "dry_run_seconds": round(dry_seconds, 2),
            "purge_seconds": round(seconds, 2),
            "longest_batch_ms": round(1000 * retention.longest_batch, 1),
        }
    finally:
        await engine.dispose()


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks retention")
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"days": args.days, "messages_per_day": args.per_day, "batch_size": args.batch}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'retention.sqlite3'}"
        print("sqlite...", file=sys.stderr)
        result["sqlite"] = await _measure(url, args.days, args.per_day, args.batch)
    name = f"posbot_bench_{uuid.uuid4().hex[:8]}"
    try:
        import asyncpg
        from sqlalchemy.engine import make_url

        base = make_url(PG_URL)
        admin = await asyncpg.connect(
            host=base.host, port=base.port or 5432, user=base.username, database=base.database
        )
        await admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: SQLite only
        result["postgresql"] = f"skipped ({type(exc).__name__})"
        return result
    try:
        print("postgresql...", file=sys.stderr)
        url = base.set(database=name).render_as_string(hide_password=False)
        result["postgresql"] = await _measure(url, args.days, args.per_day, args.batch)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return result
