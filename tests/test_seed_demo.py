"""`posbot seed-demo`: a small history through the bot's own services has every kind of row the reports
read, the same seed makes the same history, and a database with merchants is left alone."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.cli import seed_history
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Answer, FollowUp, Merchant, Staff, Submission, Terminal, Ticket, TicketEvent
from tests.conftest import make_settings

# Two weeks that take in the 1st of December: the monthly routine sample is drawn inside them.
UNTIL = date(2026, 12, 10)


async def rows(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:

            async def count(query: Any) -> int:
                return int((await session.execute(query)).scalar_one())

            def tickets(*where: Any) -> Any:
                return select(func.count()).select_from(Ticket).where(*where)

            def followups(*where: Any) -> Any:
                return select(func.count()).select_from(FollowUp).where(*where)

            done = FollowUp.status == "completed"
            ratings = await session.execute(select(Answer.value).where(Answer.kind == "rating").distinct())
            fingerprint = await session.execute(
                select(Ticket.number, Ticket.kind, Ticket.status, Ticket.category, Ticket.resolution_method).order_by(
                    Ticket.id
                )
            )
            statuses = await session.execute(select(FollowUp.kind, FollowUp.status).order_by(FollowUp.id))
            return {
                "merchants": await count(select(func.count()).select_from(Merchant)),
                "models": await count(select(func.count(func.distinct(Terminal.model)))),
                "staff": await count(select(func.count()).select_from(Staff)),
                "installations": await count(followups(FollowUp.kind == "install_first")),
                "on_time": await count(followups(done, FollowUp.completed_at <= FollowUp.window_end)),
                "late": await count(followups(done, FollowUp.completed_at > FollowUp.window_end)),
                "never": await count(followups(FollowUp.status.in_(("escalated", "called")))),
                "by_phone": await count(
                    select(func.count()).select_from(Submission).where(Submission.method == "phone")
                ),
                "repairs": await count(tickets(Ticket.kind == "repair")),
                "remote": await count(tickets(Ticket.resolution_method == "remote")),
                "onsite": await count(tickets(Ticket.resolution_method == "onsite")),
                "taken": await count(select(func.count()).select_from(TicketEvent).where(TicketEvent.action == "take")),
                "breached": await count(
                    tickets((Ticket.respond_breached_at.is_not(None)) | (Ticket.resolve_breached_at.is_not(None)))
                ),
                "complaints": await count(tickets(Ticket.kind == "complaint")),
                "reopened": await count(tickets(Ticket.reopen_count > 0)),
                "categories": await count(
                    select(func.count(func.distinct(Ticket.category))).where(Ticket.kind == "repair")
                ),
                "ratings": sorted(r[0] for r in ratings),
                "fingerprint": [tuple(r) for r in fingerprint] + [tuple(r) for r in statuses],
            }
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_two_weeks_of_ten_merchants_have_every_kind_of_row_and_one_seed_makes_one_history(
    tmp_path: Path,
) -> None:
    first = f"sqlite+aiosqlite:///{tmp_path / 'first.sqlite3'}"
    summary = await seed_history(make_settings(first), merchants=10, days=14, seed=7, until=UNTIL)
    found = await rows(first)
    assert found["merchants"] == summary["merchants"] == 10
    assert found["staff"] == 7 and found["models"] >= 2
    assert found["installations"] >= 10  # some merchants have two terminals
    assert found["on_time"] > 0 and found["late"] > 0 and found["never"] > 0
    assert found["by_phone"] > 0  # call tasks answered on the phone and recorded on the form
    assert found["repairs"] > 0 and found["remote"] > 0 and found["onsite"] > 0
    assert found["taken"] > 0 and found["breached"] > 0
    assert found["complaints"] > 0 and found["categories"] >= 2
    assert len(found["ratings"]) >= 3  # satisfaction across the range
    assert summary["tickets"] >= found["repairs"] + found["complaints"]

    second = f"sqlite+aiosqlite:///{tmp_path / 'second.sqlite3'}"
    await seed_history(make_settings(second), merchants=10, days=14, seed=7, until=UNTIL)
    assert (await rows(second))["fingerprint"] == found["fingerprint"]

    # Seeding again into a database with merchants would mix invented ones with real ones.
    assert await seed_history(make_settings(first), merchants=3, days=2, seed=7, until=UNTIL) == {"refused": 10}
    assert (await rows(first))["merchants"] == 10
