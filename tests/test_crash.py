"""A bot process killed with SIGKILL at random moments while 300 merchants report a fault, and started again.

Every conversation can be finished; every submitted report holds all its answers, once; no message shows
twice, except one sent just before a kill and not yet recorded as sent, which the restarted process sends
again: how many such repeats a kill costs is measured and printed.

No update is lost at a kill: the bot's poller confirms an update to Telegram only once its handler has
finished (aiogram's own polling confirmed a batch while its handlers still ran, and a kill lost those that
had not committed), so Telegram hands the unfinished ones to the restarted process. A merchant whose update
was lost all the same would send it again after a silence, and the walk counts that as lost.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.storage.db import create_engine, session_factory
from bot.storage.models import Answer, OutboxMessage, Submission
from tests.fakes import FakeBotAPI, SentMessage
from tests.telegram_harness import kill_hard, spawn_bot, stop, telegram_settings

CONVERSATIONS = int(os.environ.get("POSBOT_CRASH_CONVERSATIONS", "300"))
KILLS = int(os.environ.get("POSBOT_CRASH_KILLS", "10"))
FIRST = 71_000_000
# Generous: a step can wait out several restarts (15 s each on a busy machine) and an expired lease.
STEP_TIMEOUT = 400.0
# Short, so that replies a killed process had claimed go out soon; long enough that a live process,
# its sends paced one a second per chat and its writes queued behind others on SQLite, keeps its leases.
OUTBOX_LEASE_SECONDS = 10
# aiogram takes at most 100 updates in one getUpdates: the handlers in flight at a kill, each with a
# reply that may be sent and not yet recorded, are about one such batch.
REPEATS_PER_KILL = 100
# How long a merchant waits for an answer to a message the bot took before sending it again.
SILENCE = 30.0
# A report fixed by the tips: the answers it cannot be submitted without.
REQUIRED = {"terminal", "category", "can_take_payments", "description", "fixed"}

# (what the merchant does, what the bot's answer to it shows: a text, or a button, in a new message)
WALK: list[tuple[str, str, str]] = [
    ("type", "/repair", "text:Which terminal has the problem?"),
    ("type", "AB123456", "button:Card reading"),
    ("press", "Card reading", "text:Can you still take payments"),
    ("press", "Yes", "text:Please describe the problem"),
    ("type", "the card reader beeps twice", "button:Skip"),
    ("press", "Skip", "text:Did that fix the problem?"),
    ("press", "Yes", "text:Please check your answers:"),
    ("press", "✅ Submit", "text:glad it works again"),
]


def shows(api: FakeBotAPI, message: SentMessage, expected: str) -> bool:
    kind, _, value = expected.partition(":")
    if kind == "text":
        return value in (message.text or "")
    return any(label == value for label, _ in api.buttons(message))


@dataclass
class Run:
    """What the walks share: their progress, the updates lost, and the kills so far (and when the bot last
    started polling)."""

    progress: Counter[int] = field(default_factory=Counter)
    lost: Counter[int] = field(default_factory=Counter)
    kills: int = 0
    started: float = 0.0
    # Updates the killed processes had taken (confirmed or not) when they died: only these can be lost.
    taken_by_the_dead: set[int] = field(default_factory=set)

    last_update_id: int = 0

    def killing(self, api: FakeBotAPI) -> None:
        held = {update["update_id"] for update in api.pending_updates}
        self.taken_by_the_dead.update(i for i in range(self.last_update_id + 1) if i not in held)


async def converse(api: FakeBotAPI, user_id: int, start: asyncio.Event, run: Run) -> None:
    """One merchant's walk, each step acting on the message that asked for it.

    A merchant whose message got no answer, and which Telegram no longer holds for the bot (it was
    confirmed to a process that died before handling it), does what a person does: sends it again.
    Each such repeat is counted as a lost update: only after a kill, so a busy process is never taken
    for a dead one.
    """
    await start.wait()
    asking: SentMessage | None = None
    loop = asyncio.get_running_loop()
    for step, (action, value, expected) in enumerate(WALK):
        run.progress[step] += 1
        before = len(api.sent(user_id))
        deadline = loop.time() + STEP_TIMEOUT
        while True:
            if action == "type":
                update = api.user_sends_text(user_id, value)
            else:
                assert asking is not None
                data = next(data for label, data in api.buttons(asking) if label == value)
                update = api.user_presses(user_id, asking, data)
            sent_at = loop.time()
            run.last_update_id = max(run.last_update_id, update["update_id"])
            answer = None
            while answer is None:
                answer = next((m for m in api.sent(user_id)[before:] if shows(api, m, expected)), None)
                if answer is not None:
                    break
                if loop.time() > deadline:
                    seen = [m.text for m in api.sent(user_id)[-4:]]
                    raise AssertionError(f"merchant {user_id}: after {action} {value!r}, no {expected!r}; last: {seen}")
                held = any(u["update_id"] == update["update_id"] for u in api.pending_updates)
                silent_since = max(sent_at, run.started)
                dead = update["update_id"] in run.taken_by_the_dead
                if dead and not held and loop.time() - silent_since > SILENCE:
                    run.lost[user_id] += 1
                    break
                await asyncio.sleep(0.25)
            if answer is not None:
                asking = answer
                break


async def database_facts(url: str) -> dict[str, object]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            submissions = (
                await session.execute(select(Submission.telegram_user_id, Submission.status, Submission.id))
            ).all()
            answers = (await session.execute(select(Answer.submission_id, Answer.question_key))).all()
            sent_rows = (
                await session.execute(
                    select(OutboxMessage.chat_id, OutboxMessage.payload).where(OutboxMessage.status == "sent")
                )
            ).all()
            ambiguous = (await session.execute(select(func.coalesce(func.sum(OutboxMessage.ambiguous), 0)))).scalar()
            unsent = (await session.execute(select(func.count()).where(OutboxMessage.status == "pending"))).scalar_one()
    finally:
        await engine.dispose()
    keys: dict[int, list[str]] = {}
    for submission_id, key in answers:
        keys.setdefault(submission_id, []).append(key)
    # Messages recorded as sent to each merchant, edits left out (an edit changes a message, adds none).
    recorded = Counter(chat for chat, payload in sent_rows if chat >= FIRST and "edit_message_id" not in payload)
    return {
        "submissions": submissions,
        "keys": keys,
        "recorded": recorded,
        "ambiguous": int(ambiguous or 0),
        "unsent": int(unsent),
    }


@pytest.mark.slow
async def test_three_hundred_reports_survive_ten_kills_of_the_bot(sqlite_url: str, tmp_path: Path) -> None:
    rng = random.Random(12)
    async with FakeBotAPI(token="123456:TEST-token") as api:
        merchants = [FIRST + i for i in range(CONVERSATIONS)]
        for user_id in merchants:
            api.add_user(user_id, first_name=f"shop {user_id - FIRST}", language_code="en")
        # No staff group: its 20 messages a minute would pace 300 reports to 15 minutes, and the staff's
        # side is not what this test is about.
        settings = telegram_settings(sqlite_url, api, telegram_rate_per_second=250, staff_chat_id=None)
        extra = {"OUTBOX_LEASE_SECONDS": str(OUTBOX_LEASE_SECONDS)}
        log = tmp_path / "bot.log"
        process = await spawn_bot(api, settings, log, extra)
        start = asyncio.Event()
        run = Run(started=asyncio.get_running_loop().time())
        progress, lost = run.progress, run.lost
        walks = [asyncio.create_task(converse(api, user_id, start, run)) for user_id in merchants]
        kills = 0
        began = time.monotonic()

        async def report() -> None:
            while True:
                await asyncio.sleep(10)
                done = sum(walk.done() for walk in walks)
                print(
                    f"{time.monotonic() - began:.0f}s: kills {kills}, done {done}, lost {sum(lost.values())}, "
                    f"steps {sorted(progress.items())}"
                )

        reporter = asyncio.create_task(report())
        try:
            start.set()
            steps = len(WALK) * CONVERSATIONS
            for _ in range(KILLS):
                # At a random moment of the run: after a random share of the steps since the last start.
                target = sum(progress.values()) + rng.uniform(0.4, 1.4) * steps / (KILLS + 1)
                # Polled: progress is a plain counter the walks bump.
                while sum(progress.values()) < min(target, steps - 1) and not all(w.done() for w in walks):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                if all(walk.done() for walk in walks):
                    break
                run.killing(api)
                await kill_hard(process)
                kills = run.kills = kills + 1
                process = await spawn_bot(api, settings, log, extra)
                run.started = asyncio.get_running_loop().time()
            failures = [walk for walk in await asyncio.gather(*walks, return_exceptions=True) if walk is not None]
            assert not failures, f"{len(failures)} conversations could not be finished, e.g. {failures[0]}"
            # Until every reply is recorded: what is left in flight is known, and the counts below are final.
            for _ in range(120):
                facts = await database_facts(sqlite_url)
                if facts["unsent"] == 0:
                    break
                await asyncio.sleep(0.5)
        finally:
            reporter.cancel()
            for walk in walks:
                walk.cancel()
            await stop(process)
        shown = {user_id: len(api.sent(user_id)) for user_id in merchants}
        overtaken = log.read_text(errors="replace").count("the lease ran out before the result was recorded")

    assert kills == KILLS, f"the conversations ended after {kills} kills: the kills came too late"
    submissions = facts["submissions"]
    keys = facts["keys"]
    assert isinstance(submissions, list) and isinstance(keys, dict)
    submitted = [(user, sid) for user, status, sid in submissions if status == "submitted"]
    assert sorted(user for user, _ in submitted) == merchants  # each merchant's report, once
    assert [status for _, status, _ in submissions if status != "submitted"] == []  # none left half-way
    for _, submission_id in submitted:
        stored = keys[submission_id]
        assert set(stored) >= REQUIRED, f"submission {submission_id} lacks {REQUIRED - set(stored)}"
        assert len(stored) == len(set(stored)), f"submission {submission_id} stores an answer twice"

    recorded = facts["recorded"]
    assert isinstance(recorded, Counter)
    repeats = {user: shown[user] - recorded[user] for user in merchants if shown[user] != recorded[user]}
    assert all(extra > 0 for extra in repeats.values()), f"messages recorded as sent but never shown: {repeats}"
    duplicates = sum(repeats.values())
    print(
        f"{CONVERSATIONS} reports, {kills} kills: {duplicates} messages shown twice "
        f"({duplicates / kills:.1f} per kill), ambiguous sends counted: {facts['ambiguous']}, "
        f"updates lost (confirmed to a process killed before it handled them, sent again by the merchant): "
        f"{sum(lost.values())} ({sum(lost.values()) / kills:.1f} per kill); "
        f"leases that ran out in a live process: {overtaken}"
    )
    assert duplicates <= REPEATS_PER_KILL * kills
    assert sum(lost.values()) == 0, f"updates lost at a kill: {dict(lost)}"
