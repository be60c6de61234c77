"""How long `posbot export --format xlsx` takes over 100,000 survey submissions.

The database holds what a busy year leaves behind: 100,000 submitted surveys of every
form (repair reports on both versions among them, about 700,000 answers), one follow-up
each, and a repair case for every tenth. Rows go in bulk (no services: that would take
longer than the export); the export is the real one, writing a real xlsx file.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bot.dialogs.loader import FormRegistry, load_forms
from bot.dialogs.schema import Form, Kind, Step
from bot.services.export import Export, ExportOptions, writer_for
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.models import Answer, FollowUp, Merchant, Submission, Ticket, TicketEvent

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
MERCHANTS = 5_000
STEP = 20_000


def value_for(step: Step, rng: random.Random) -> Any:
    """A value of the question's kind, as the engine stores it."""
    kind = step.kind
    if kind == Kind.CHOICE:
        return rng.choice(step.options)
    if kind == Kind.MULTI_CHOICE:
        return rng.sample(step.options, 1)
    if kind == Kind.YES_NO:
        return rng.random() < 0.8
    if kind == Kind.RATING:
        return rng.choice((3, 4, 4, 5, 5, 5))
    if kind == Kind.NPS:
        return rng.randint(5, 10)
    if kind == Kind.PHONE:
        return f"+86138{rng.randint(0, 99_999_999):08d}"
    if kind == Kind.SERIAL:
        return f"SN{rng.randint(0, 999_999):06d}"
    if kind == Kind.DATETIME:
        return (START + timedelta(days=rng.randint(0, 300))).isoformat()
    if kind == Kind.FILE:
        return [{"kind": "photo", "file_id": "f", "name": None}]
    return rng.choice(("works fine now", "paper jams sometimes", "call me on 13912345678 please", "ok"))


async def fill(url: str, submissions: int, forms: FormRegistry) -> None:
    rng = random.Random(10)
    choices: list[Form] = [f for f in forms]
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(Merchant),
                [
                    {"name": f"shop {m}", "phone": f"+86139{m:08d}", "invite_code": f"c{m}", "created_at": START}
                    for m in range(1, MERCHANTS + 1)
                ],
            )
        for first in range(0, submissions, STEP):
            ids = range(first + 1, min(first + STEP, submissions) + 1)
            rows: dict[str, list[dict[str, Any]]] = {
                n: [] for n in ("subs", "answers", "followups", "tickets", "events")
            }
            subs, answers, followups, tickets, events = rows.values()
            for i in ids:
                form = choices[i % len(choices)]
                at = START + timedelta(minutes=3 * i)
                merchant = 1 + i % MERCHANTS
                followups.append(
                    {
                        "id": i,
                        "kind": form.key,
                        "form_key": form.key,
                        "merchant_id": merchant,
                        "source_key": f"bench:{i}",
                        "status": "completed",
                        "send_at": at,
                        "window_end": at + timedelta(days=3),
                        "completed_at": at + timedelta(hours=rng.randint(1, 100)),
                        "method": "chat",
                        "created_at": at,
                    }
                )
                subs.append(
                    {
                        "id": i,
                        "form_key": form.key,
                        "form_version": form.version,
                        "telegram_user_id": 10_000 + merchant,
                        "merchant_id": merchant,
                        "followup_id": i,
                        "status": "submitted",
                        "locale": "zh_CN",
                        "method": "chat",
                        "started_at": at,
                        "finished_at": at + timedelta(minutes=2),
                    }
                )
                for step in form.steps:
                    answers.append(
                        {
                            "submission_id": i,
                            "question_key": step.key,
                            "kind": step.kind.value,
                            "value": value_for(step, rng),
                            "answered_at": at,
                        }
                    )
                if i % 10 == 0:
                    tickets.append(
                        {
                            "id": i // 10,
                            "number": f"R-2026-{i // 10:06d}",
                            "kind": "repair",
                            "status": "closed",
                            "merchant_id": merchant,
                            "category": "printing",
                            "severity": "normal",
                            "description": "prints blank receipts",
                            "contact_phone": f"+86139{merchant:08d}",
                            "created_at": at,
                            "first_response_at": at + timedelta(minutes=20),
                            "resolved_at": at + timedelta(hours=5),
                            "resolution_method": "remote",
                        }
                    )
                    events += [
                        {"ticket_id": i // 10, "at": at, "actor": "system", "action": a, "detail": {}}
                        for a in ("created", "take", "resolved", "close")
                    ]
            async with engine.begin() as connection:
                await connection.execute(insert(FollowUp), followups)
                await connection.execute(insert(Submission), subs)
                await connection.execute(insert(Answer), answers)
                if tickets:
                    await connection.execute(insert(Ticket), tickets)
                    await connection.execute(insert(TicketEvent), events)
            print(f"  {ids[-1]:>9,} submissions", file=sys.stderr, end="\r")
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    print(file=sys.stderr)


async def measure(url: str, forms: FormRegistry, target: Path, fmt: str) -> tuple[float, float, dict[str, int]]:
    engine = create_engine(url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        job = Export(session_factory(engine), forms, ExportOptions(locale="zh_CN"))
        summary = await job.write(writer_for(fmt, target))  # type: ignore[arg-type]
        print(f"CPU seconds per sheet: {summary.cpu_seconds}", file=sys.stderr)
        return time.perf_counter() - started, time.process_time() - cpu, summary.rows
    finally:
        await engine.dispose()


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks export")
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    args = parser.parse_args(argv)
    forms = load_forms()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'export.sqlite3'}"
        await upgrade_async(url)
        print(f"seeding {args.submissions:,} submissions", file=sys.stderr)
        await fill(url, args.submissions, forms)
        print(f"exporting ({args.format})", file=sys.stderr)
        seconds, cpu, rows = await measure(url, forms, Path(folder) / f"out.{args.format}", args.format)
    print(f"rows per sheet: {rows}", file=sys.stderr)
    return {
        "bench": "export",
        "format": args.format,
        "submissions": rows["answers"],
        "tickets": rows["tickets"],
        "followups": rows["followups"],
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
    }
