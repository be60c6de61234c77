"""Personal data kept no longer than needed (002 §4.2): the purge, its dry run, and numbers gone at delivery."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.app import Core
from bot.domain.retention import RetentionPolicy
from bot.services.retention import Retention
from bot.services.updates import UpdateWork
from bot.storage.db import upgrade
from bot.storage.models import (
    Answer,
    Conversation,
    FollowUp,
    OutboxMessage,
    ProcessedUpdate,
    StaffAudit,
    Submission,
    Ticket,
)
from tests.conftest import STAFF_CHAT, linked_merchant
from tests.test_cli import ROOT, posbot

SHOP = 515151
PHONE = "+8613812345678"


def snapshot_query() -> list[Any]:
    return [
        select(OutboxMessage.id, OutboxMessage.payload).order_by(OutboxMessage.id),
        select(ProcessedUpdate.update_id).order_by(ProcessedUpdate.update_id),
        select(Conversation.telegram_user_id, Conversation.state, Conversation.revision).order_by(
            Conversation.telegram_user_id
        ),
        select(StaffAudit.id).order_by(StaffAudit.id),
        select(Answer.id, Answer.value).order_by(Answer.id),
        select(Ticket.id, Ticket.description).order_by(Ticket.id),
    ]


async def snapshot(core: Core) -> list[list[Any]]:
    async with core.sessions() as session:
        return [[tuple(row) for row in (await session.execute(query)).all()] for query in snapshot_query()]


async def seed(core: Core) -> None:
    """Rows of every kind the purge looks at, 40 and 5 days old (reveals: 400 and 40), and records to keep."""
    now = core.clock.now()
    old, young = now - timedelta(days=40), now - timedelta(days=5)
    merchant_id = await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE)
    async with core.sessions() as session, session.begin():
        work = UpdateWork(session, old)

        def followup(status: str, key: str) -> FollowUp:
            row = FollowUp(
                kind="install_first",
                form_key="install_first",
                merchant_id=merchant_id,
                source_key=key,
                status=status,
                send_at=old,
                window_end=old,
                created_at=old,
            )
            session.add(row)
            return row

        open_task, done_task = followup("escalated", "open"), followup("completed", "done")
        await session.flush()

        def say(chat: int, text: str, at: Any, status: str = "sent", **columns: Any) -> None:
            message = work.say(chat, {"text": text, "reply_markup": None}, **columns)
            message.created_at, message.status = at, status

        say(SHOP, "old reply", old)
        say(SHOP, "old failed", old, status="failed")
        say(SHOP, "old, still going out", old, status="pending")
        say(SHOP, "young reply", young)
        say(STAFF_CHAT, "call task, still open", old, purpose="escalation", followup_id=open_task.id)
        say(STAFF_CHAT, "call task, done", old, purpose="escalation", followup_id=done_task.id)
        for update_id, at in ((1, old), (2, old), (3, young)):
            session.add(ProcessedUpdate(update_id=update_id, processed_at=at))
        for user_id, at, state in (
            (1001, old, {"form": "repair"}),
            (1002, young, {"form": "repair"}),
            (1003, old, None),
        ):
            session.add(
                Conversation(telegram_user_id=user_id, chat_id=user_id, locale="en", state=state, updated_at=at)
            )
        # Who saw a full number is kept a year (the policy's contact_reveal_days).
        ancient = now - timedelta(days=400)
        for action, at in (("phone_revealed", ancient), ("phone_revealed", old), ("refused", ancient)):
            session.add(StaffAudit(at=at, telegram_user_id=900001, action=action, subject="ticket:1", detail={}))
        submission = Submission(
            form_key="repair",
            form_version=1,
            telegram_user_id=SHOP,
            merchant_id=merchant_id,
            status="submitted",
            locale="en",
            started_at=old,
            finished_at=old,
        )
        session.add(submission)
        await session.flush()
        session.add(
            Answer(
                submission_id=submission.id, question_key="description", kind="text", value="no signal", answered_at=old
            )
        )
        session.add(
            Ticket(
                number="R-2026-000001",
                kind="repair",
                status="closed",
                merchant_id=merchant_id,
                description="no signal",
                contact_phone=PHONE,
                created_at=old,
            )
        )


async def test_purge_takes_what_is_older_than_its_period_and_keeps_the_young_rows_answers_and_tickets(
    core: Core,
) -> None:
    await seed(core)
    before = await snapshot(core)
    retention = Retention(core.sessions, core.clock, core.policy.retention)
    expected = {"message_texts": 3, "processed_updates": 2, "dialogue_states": 1, "contact_reveals": 1}

    preview = await retention.purge(dry_run=True)
    assert preview.counts == expected
    assert await snapshot(core) == before  # a dry run changes nothing

    report = await retention.purge()
    assert report.counts == expected
    async with core.sessions() as session:
        payloads = {
            p["text"] if not p.get("purged") else f"blank {i}": p
            for i, p in (await session.execute(select(OutboxMessage.id, OutboxMessage.payload))).all()
        }
        kept_texts = sorted(t for t in payloads if not t.startswith("blank"))
        assert kept_texts == ["call task, still open", "old, still going out", "young reply"]
        assert len(payloads) == 6  # rows stay: replies to an old message still find their case
        assert list((await session.execute(select(ProcessedUpdate.update_id))).scalars()) == [3]
        states = dict((await session.execute(select(Conversation.telegram_user_id, Conversation.state))).all())
        assert states[1001] is None and states[1002] == {"form": "repair"}
        audit = sorted((await session.execute(select(StaffAudit.action))).scalars())
        assert audit == ["phone_revealed", "refused"]
        assert (await session.execute(select(Answer.value))).scalars().all() == ["no signal"]
        ticket = (await session.execute(select(Ticket))).scalar_one()
        assert (ticket.description, ticket.contact_phone) == ("no signal", PHONE)

    again = await retention.purge()
    assert again.total == 0  # what went is gone; nothing is counted twice


async def test_a_purge_in_small_batches_takes_every_old_row(core: Core) -> None:
    now = core.clock.now()
    async with core.sessions() as session, session.begin():
        session.add_all(
            ProcessedUpdate(update_id=i, processed_at=now - timedelta(days=31 if i < 95 else 1)) for i in range(100)
        )
    report = await Retention(core.sessions, core.clock, RetentionPolicy(batch_size=10)).purge()
    assert report.counts["processed_updates"] == 95
    async with core.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(ProcessedUpdate))).scalar_one() == 5


async def test_a_full_number_shown_to_staff_in_private_is_masked_in_the_stored_text_once_delivered(
    core: Core,
) -> None:
    async with core.sessions() as session, session.begin():
        work = UpdateWork(session, core.clock.now())
        work.say(900001, {"text": f"📞 Lucky Noodles: {PHONE}", "reply_markup": None}, purpose="phone")
        work.say(SHOP, {"text": "Your number 138 1234 5678 is on file.", "reply_markup": None})
    assert await core.outbox.deliver() == 2
    said = [payload["text"] for _, payload in core.outbox.messenger.sent]  # type: ignore[attr-defined]
    assert said == [f"📞 Lucky Noodles: {PHONE}", "Your number 138 1234 5678 is on file."]  # they did see it
    async with core.sessions() as session:
        stored = list((await session.execute(select(OutboxMessage.payload).order_by(OutboxMessage.id))).scalars())
    assert [p["text"] for p in stored] == ["📞 Lucky Noodles: 138****5678", "Your number 138****5678 is on file."]


async def _old_and_young_update_ids(url: str) -> None:
    from bot.storage.db import create_engine, session_factory

    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        async with session_factory(engine)() as session, session.begin():
            session.add_all(ProcessedUpdate(update_id=i, processed_at=now - timedelta(days=40)) for i in range(3))
            session.add(ProcessedUpdate(update_id=99, processed_at=now - timedelta(days=1)))
    finally:
        await engine.dispose()


def count_ids(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("select count(*) from processed_updates").fetchone()[0])


def test_posbot_purge_dry_run_prints_what_would_go_and_changes_nothing_then_purge_does_it(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    asyncio.run(_old_and_young_update_ids(url))
    env = {"DATABASE_URL": url, "DEFAULT_LOCALE": "en"}

    dry = posbot("purge", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: nothing changed." in dry.stdout
    assert "ids of handled updates, older than 30 days (deleted): 3" in dry.stdout
    assert "texts of delivered messages, older than 30 days (blanked): 0" in dry.stdout
    assert count_ids(path) == 4

    done = posbot("purge", env=env)
    assert done.returncode == 0, done.stderr
    assert "Purged:" in done.stdout and "ids of handled updates, older than 30 days (deleted): 3" in done.stdout
    assert count_ids(path) == 1


async def test_the_purge_runs_daily_at_the_policy_s_hour(core: Core) -> None:
    from bot.app import build_scheduler

    job = build_scheduler(core).get_job("retention")
    assert job is not None
    assert "hour='3'" in str(job.trigger) and "minute='30'" in str(job.trigger)


def test_posbot_purge_needs_no_telegram_library(tmp_path: Path) -> None:
    """The purge is a database job: it runs where aiogram is not even importable."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bot.cli import app\n"
        "result = CliRunner().invoke(app, ['purge', '--dry-run'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiogram', 'aiohttp')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "DATABASE_URL")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
