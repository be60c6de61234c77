"""How long the quality indicators take over 1,000,000 survey answers and 100,000 cases on SQLite.

The history is a year of a busy company: installations, repairs and complaints, follow-ups answered
on time, late or never, by chat or phone, and their answers (ratings, NPS, yes/no). Generating it
takes a while, so the file is kept in the temporary folder and reused while its shape is the same
(the output says whether it was generated). Timed (`seconds`, and `cpu_seconds`): the indicators of
the whole year, every answer and case; then those `posbot report` computes by default, the last 30
days (`month_seconds`), and the same with the chart's weekly trend.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text

from bot.domain.followup_policy import load_policy
from bot.services.indicators import Period, period_report
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.models import Answer, FollowUp, Merchant, Staff, Submission, Terminal, Ticket

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SHAPE = "v1"  # bump when the generated history changes, so a cached file is not reused
MERCHANTS = 20_000
STAFF = 30
MODELS = ("P300", "A8", "N910", "S90", "X990", "Q2")
CATEGORIES = ("card_reading", "printing", "network", "screen_keys", "power", "transactions", "other")
SUBJECTS = ("slow_response", "application_rejected", "terminal_fault", "unreasonable_fees", "staff_attitude", "other")
ROLES = ("service", "aftersales", "sales", "supervisor")
KINDS = ("install_first", "install_second", "repair", "complaint", "routine", "key_account")
FORM_OF = {"repair": "post_repair", "complaint": "post_complaint"}
ANSWERS_PER_SUBMISSION = 4
CHUNK = 20_000


def _at(rng: random.Random) -> datetime:
    return NOW - timedelta(seconds=rng.randrange(365 * 86400))


def _tickets(count: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, count + 1):
        created = _at(rng)
        kind = "complaint" if i % 10 == 0 else ("finding" if i % 23 == 0 else "repair")
        responded = created + timedelta(minutes=rng.randrange(5, 600)) if rng.random() < 0.9 else None
        resolved = created + timedelta(hours=rng.randrange(1, 96)) if rng.random() < 0.88 else None
        rows.append(
            {
                "id": i,
                "number": f"{kind[0].upper()}-2026-{i:06d}",
                "kind": kind,
                "status": ("closed" if rng.random() < 0.5 else "resolved") if resolved else "taken",
                "merchant_id": 1 + i % MERCHANTS,
                "terminal_id": 1 + i % MERCHANTS,
                "category": rng.choice(SUBJECTS if kind == "complaint" else CATEGORIES),
                "severity": rng.choice(("urgent", "partial", "normal")),
                "role": rng.choice(ROLES),
                "assignee_id": 1 + i % STAFF,
                "created_at": created,
                "first_response_at": responded,
                "respond_due_at": created + timedelta(hours=2),
                "sla_due_at": created + timedelta(days=2),
                "resolved_at": resolved,
                "resolution_method": (rng.choice(("remote", "onsite")) if resolved else None),
                "reopen_count": 1 if rng.random() < 0.08 else 0,
                "serious": rng.random() < 0.05,
                "agreed_outcome": rng.choice(("refund", "apology", "explanation", None))
                if kind == "complaint"
                else None,
                "unverified": False,
            }
        )
    return rows


def _followups(count: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, count + 1):
        kind = KINDS[i % len(KINDS)]
        window_end = _at(rng)
        fate = rng.random()
        completed = window_end - timedelta(hours=rng.randrange(1, 60)) if fate < 0.8 else None
        if 0.8 <= fate < 0.9:
            completed = window_end + timedelta(hours=rng.randrange(1, 48))
        phone = rng.random() < 0.15
        rows.append(
            {
                "id": i,
                "kind": kind,
                "form_key": FORM_OF.get(kind, kind),
                "merchant_id": 1 + i % MERCHANTS,
                "terminal_id": 1 + i % MERCHANTS,
                "ticket_id": 1 + i % 50_000 if kind in ("repair", "complaint") else None,
                "source_key": f"bench:{i}",
                "status": "completed" if completed else "escalated",
                "escalation_reason": None if completed else rng.choice(("no_answer", "unreachable", "not_linked")),
                "send_at": window_end - timedelta(days=3),
                "window_end": window_end,
                "completed_at": completed,
                "method": ("phone" if phone else "chat") if completed else None,
                "handled_by": 900_000 + i % STAFF if phone else None,
                "estimated": False,
                "attempts": 1,
                "created_at": window_end - timedelta(days=4),
            }
        )
    return rows


def _submission(i: int, followups: int, rng: random.Random) -> dict[str, Any]:
    finished = _at(rng)
    return {
        "id": i,
        "form_key": "routine" if i % 3 else "post_repair",
        "form_version": 1,
        "telegram_user_id": 1 + i % MERCHANTS,
        "merchant_id": 1 + i % MERCHANTS,
        "followup_id": i if i <= followups else None,
        "status": "submitted" if rng.random() < 0.95 else "abandoned",
        "locale": "zh_CN",
        "method": "phone" if i % 7 == 0 else "chat",
        "operator_id": 900_000 + i % STAFF if i % 7 == 0 else None,
        "started_at": finished - timedelta(minutes=3),
        "finished_at": finished,
    }


def _answers(submission: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    at = submission["finished_at"]
    sid = submission["id"]
    return [
        {
            "submission_id": sid,
            "question_key": "attitude",
            "kind": "rating",
            "value": rng.choice((1, 2, 3, 4, 4, 5, 5, 5)),
            "answered_at": at,
        },
        {
            "submission_id": sid,
            "question_key": "response_speed",
            "kind": "rating",
            "value": rng.choice((3, 4, 5)),
            "answered_at": at,
        },
        {
            "submission_id": sid,
            "question_key": "recommend",
            "kind": "nps",
            "value": rng.randrange(11),
            "answered_at": at,
        },
        {
            "submission_id": sid,
            "question_key": "working",
            "kind": "yes_no",
            "value": rng.random() < 0.9,
            "answered_at": at,
        },
    ]


async def generate(url: str, answers: int, tickets: int) -> None:
    rng = random.Random(20261124)
    submissions = answers // ANSWERS_PER_SUBMISSION
    followups = submissions * 4 // 5
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(Merchant),
                [
                    {
                        "id": m,
                        "name": f"shop {m}",
                        "invite_code": f"c{m}",
                        "key_account": False,
                        "routine_opt_out": False,
                        "unreachable": False,
                        "created_at": NOW,
                    }
                    for m in range(1, MERCHANTS + 1)
                ],
            )
            await connection.execute(
                insert(Terminal),
                [
                    {"id": m, "serial": f"SN{m:08d}", "merchant_id": m, "model": MODELS[m % len(MODELS)]}
                    for m in range(1, MERCHANTS + 1)
                ],
            )
            await connection.execute(
                insert(Staff),
                [
                    {
                        "id": s,
                        "telegram_user_id": 900_000 + s,
                        "name": f"staff {s}",
                        "role": ROLES[s % 4],
                        "active": True,
                    }
                    for s in range(1, STAFF + 1)
                ],
            )
            rows = _tickets(tickets, rng)
            for start in range(0, len(rows), CHUNK):
                await connection.execute(insert(Ticket), rows[start : start + CHUNK])
            print(f"  {tickets:,} tickets", file=sys.stderr)
            rows = _followups(followups, rng)
            for start in range(0, len(rows), CHUNK):
                await connection.execute(insert(FollowUp), rows[start : start + CHUNK])
            print(f"  {followups:,} follow-ups", file=sys.stderr)
            for start in range(1, submissions + 1, CHUNK):
                chunk = [_submission(i, followups, rng) for i in range(start, min(start + CHUNK, submissions + 1))]
                await connection.execute(insert(Submission), chunk)
                await connection.execute(insert(Answer), [a for s in chunk for a in _answers(s, rng)])
                print(f"  {(start + len(chunk) - 1) * ANSWERS_PER_SUBMISSION:>9,} answers", file=sys.stderr, end="\r")
        print(file=sys.stderr)
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def analyze_new_indexes(url: str) -> None:
    """Statistics for indexes a migration added to a cached file, as a generated one has for all of them."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            unknown = await connection.execute(
                text(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
                    "('answers', 'submissions', 'followups', 'tickets') "
                    "AND name NOT IN (SELECT idx FROM sqlite_stat1 WHERE idx IS NOT NULL)"
                )
            )
            if unknown.scalar_one():
                print("analyzing the indexes a migration added", file=sys.stderr)
                await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def counts(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            answers = (await connection.execute(select(func.count()).select_from(Answer))).scalar_one()
            tickets = (await connection.execute(select(func.count()).select_from(Ticket))).scalar_one()
            return int(answers), int(tickets)
    finally:
        await engine.dispose()


async def measure(url: str, period: Period, rounds: int, weeks: bool) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of computing the report (CPU: what a busy machine moves less)."""
    policy = load_policy()
    engine = create_engine(url)
    timings, cpu = [], []
    try:
        for _ in range(rounds):
            started, used = time.perf_counter(), time.process_time()
            async with session_factory(engine)() as session:
                await period_report(session, policy, period, weeks=weeks)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
    finally:
        await engine.dispose()
    return statistics.median(timings), statistics.median(cpu)


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks report")
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="generate the history again even if cached")
    args = parser.parse_args(argv)
    folder = Path(tempfile.gettempdir()) / "posbot-bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"report-{SHAPE}-{args.answers}-{args.tickets}.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    generated = False
    if args.fresh or not path.exists() or await counts(url) != (args.answers, args.tickets):
        path.unlink(missing_ok=True)
        print(f"generating {args.answers:,} answers and {args.tickets:,} tickets in {path}", file=sys.stderr)
        started = time.perf_counter()
        await upgrade_async(url)
        await generate(url, args.answers, args.tickets)
        generated = True
        print(f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    else:
        print(f"reusing {path} (generated earlier)", file=sys.stderr)
    await upgrade_async(url)  # a cached file gets any newer migration (indexes) too
    await analyze_new_indexes(url)
    zone = ZoneInfo(load_policy().timezone)
    month = Period.last_days(30, zone, NOW)
    year = Period.last_days(365, zone, NOW)
    seconds, cpu_seconds = await measure(url, year, args.rounds, weeks=False)
    print(
        f"the indicators of the whole year (every answer and case): {seconds:.3f} s, "
        f"{cpu_seconds:.3f} s of CPU (median of {args.rounds})",
        file=sys.stderr,
    )
    month_seconds, _ = await measure(url, month, args.rounds, weeks=False)
    print(f"the indicators of the last 30 days (posbot report's default): {month_seconds:.3f} s", file=sys.stderr)
    charted, _ = await measure(url, month, args.rounds, weeks=True)
    print(f"the same with the chart's weekly trend: {charted:.3f} s", file=sys.stderr)
    answers, tickets = await counts(url)
    return {
        "bench": "report",
        "answers": answers,
        "tickets": tickets,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "month_seconds": round(month_seconds, 3),
        "with_chart_trend_seconds": round(charted, 3),
        "generated": generated,
    }
