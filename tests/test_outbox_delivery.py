"""Delivery under concurrency: each message and each survey reaches Telegram once, whoever sends it.

Two deliverers race over one table: two processes on one database, or, in one process, a
handler's immediate delivery and the periodic delivery job. A row is claimed atomically, so
only one of them ever sends it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Core
from bot.clock import FrozenClock
from bot.delivery.outbox import Outbox
from bot.scheduling.followups import FollowUpDispatcher
from bot.storage.db import create_engine, session_factory
from bot.storage.models import FollowUp, OutboxMessage
from tests.fakes import seed_due_followups

ROWS = 1000
CHATS = 50


@dataclass
class YieldingMessenger:
    """Records every send, and lets the event loop run another deliverer while "on the wire"."""

    sends: list[tuple[int, str]] = field(default_factory=list)

    async def send(self, chat_id: int, payload: dict[str, Any]) -> int | None:
        await asyncio.sleep(0)
        self.sends.append((chat_id, payload["text"]))
        await asyncio.sleep(0)
        return len(self.sends)


async def queue_messages(core: Core, count: int) -> list[int]:
    now = core.clock.now()
    rows = [
        {
            "chat_id": 30_000_000 + i % CHATS,
            "payload": {"text": f"message {i}"},
            "purpose": "reply",
            "status": "pending",
            "attempts": 0,
            "created_at": now,
        }
        for i in range(count)
    ]
    async with core.sessions() as session, session.begin():
        await session.execute(insert(OutboxMessage), rows)
    async with core.sessions() as session:
        return list((await session.execute(select(OutboxMessage.id).order_by(OutboxMessage.id))).scalars())


async def outbox_rows(core: Core) -> dict[tuple[str, int], int]:
    """(status, attempts) -> how many rows."""
    async with core.sessions() as session:
        found = await session.execute(
            select(OutboxMessage.status, OutboxMessage.attempts, func.count()).group_by(
                OutboxMessage.status, OutboxMessage.attempts
            )
        )
        return {(status, attempts): int(n) for status, attempts, n in found.all()}


async def pending(core: Core) -> int:
    async with core.sessions() as session:
        found = await session.execute(select(func.count()).where(OutboxMessage.status == "pending"))
        return int(found.scalar_one())


async def warm(sessions: async_sessionmaker[AsyncSession], connections: int = 2) -> None:
    """Open connections as a running bot has them, so no deliverer lags behind a connect."""

    async def hold() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(hold() for _ in range(connections)))


async def drain(core: Core, outbox: Outbox) -> int:
    """Deliver until nothing is left to send, as the periodic job would, tick after tick."""
    sent = 0
    while await pending(core):
        sent += await outbox.deliver(limit=10)
    return sent


async def test_two_outboxes_on_one_database_send_each_message_exactly_once(core: Core) -> None:
    await queue_messages(core, ROWS)
    messenger = YieldingMessenger()
    # A second process: its own engine and connections on the same database.
    other_engine = create_engine(core.settings.database_url)
    try:
        first = Outbox(core.sessions, messenger, core.clock)
        second = Outbox(session_factory(other_engine), messenger, core.clock)
        await asyncio.gather(warm(first.sessions), warm(second.sessions))
        counts = await asyncio.gather(drain(core, first), drain(core, second))
    finally:
        await other_engine.dispose()
    times_sent = Counter(text for _, text in messenger.sends)
    assert len(times_sent) == ROWS
    assert [text for text, n in times_sent.items() if n > 1] == []
    assert sum(counts) == ROWS
    assert min(counts) > 0, "both deliverers should have taken part"
    assert await outbox_rows(core) == {("sent", 1): ROWS}


async def test_two_outboxes_claiming_at_the_same_moment_never_share_a_row(core: Core) -> None:
    await queue_messages(core, 100)
    other_engine = create_engine(core.settings.database_url)
    try:
        first = Outbox(core.sessions, YieldingMessenger(), core.clock)
        second = Outbox(session_factory(other_engine), YieldingMessenger(), core.clock)
        await asyncio.gather(warm(first.sessions), warm(second.sessions))
        mine, theirs = await asyncio.gather(first.claim(limit=60), second.claim(limit=60))
    finally:
        await other_engine.dispose()
    assert {m.id for m in mine} & {m.id for m in theirs} == set()
    assert len(mine) + len(theirs) == 100


async def test_immediate_delivery_and_the_delivery_job_do_not_both_send_a_reply(core: Core) -> None:
    """One process: a handler delivers its reply at once while the periodic job wakes up."""
    (reply,) = await queue_messages(core, 1)
    messenger = YieldingMessenger()
    outbox = Outbox(core.sessions, messenger, core.clock)
    await warm(core.sessions, 4)
    await asyncio.gather(outbox.deliver([reply]), outbox.deliver(), outbox.deliver([reply]), outbox.deliver())
    assert messenger.sends == [(30_000_000, "message 0")]
    assert await outbox_rows(core) == {("sent", 1): 1}


def dispatcher_on(core: Core, sessions: async_sessionmaker[AsyncSession], messenger: Any) -> FollowUpDispatcher:
    return FollowUpDispatcher(
        sessions, messenger, core.clock, core.policy, core.calendar, staff_chat_id=None, batch=10, concurrency=4
    )


async def test_two_follow_up_dispatchers_on_one_database_send_each_survey_once(core: Core) -> None:
    count = 300
    await seed_due_followups(core.settings.database_url, count, 40_000_000, core.clock.now())
    messenger = YieldingMessenger()
    other_engine = create_engine(core.settings.database_url)
    try:
        first = dispatcher_on(core, core.sessions, messenger)
        second = dispatcher_on(core, session_factory(other_engine), messenger)
        await asyncio.gather(warm(first.sessions, 4), warm(second.sessions, 4))
        reports = await asyncio.gather(first.tick(), second.tick())
    finally:
        await other_engine.dispose()
    surveys_per_merchant = Counter(chat for chat, _ in messenger.sends)
    assert len(surveys_per_merchant) == count
    assert [chat for chat, n in surveys_per_merchant.items() if n > 1] == []
    assert reports[0].sent + reports[1].sent == count
    assert first.stats.duplicates + second.stats.duplicates == 0
    async with core.sessions() as session:
        found = await session.execute(
            select(FollowUp.status, FollowUp.attempts, func.count()).group_by(FollowUp.status, FollowUp.attempts)
        )
        assert {(status, attempts): int(n) for status, attempts, n in found.all()} == {("sent", 1): count}


@dataclass
class StuckMessenger:
    """Records sends; the first send hangs until the test lets it go (a request stuck on the wire)."""

    sends: list[int] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    stuck: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, chat_id: int, payload: dict[str, Any]) -> int | None:
        if not self.stuck.is_set():
            self.stuck.set()
            await self.release.wait()
        self.sends.append(chat_id)
        return len(self.sends)


async def test_surveys_that_waited_past_their_lease_are_left_to_the_claim_that_holds_them(
    core: Core, clock: FrozenClock
) -> None:
    """A dispatcher claims a batch, then its first send hangs past the lease; another claims the batch."""
    count = 10
    await seed_due_followups(core.settings.database_url, count, 50_000_000, clock.now())
    lease = timedelta(minutes=2)
    shared = StuckMessenger()
    first, second = (
        FollowUpDispatcher(
            core.sessions, shared, clock, core.policy, core.calendar, staff_chat_id=None, lease=lease, concurrency=1
        )
        for _ in range(2)
    )
    stuck_tick = asyncio.create_task(first.tick())
    await shared.stuck.wait()
    clock.advance(lease + timedelta(seconds=1))
    assert (await second.tick()).sent == count  # the leases ran out: the second instance takes over
    shared.release.set()
    await stuck_tick

    sent = Counter(shared.sends)
    # The send that was on the wire when its lease ran out goes out twice, and is counted as such;
    # the nine that only waited in the first dispatcher's queue are not sent again.
    assert sorted(sent.values()) == [1] * (count - 1) + [2]
    assert (first.stats.duplicates, second.stats.duplicates) == (1, 0)


async def test_replies_that_waited_past_their_lease_are_left_to_the_outbox_that_holds_them(
    core: Core, clock: FrozenClock
) -> None:
    """One deliverer's first send hangs past the lease; the other process delivers the batch."""
    await queue_messages(core, 10)
    shared = StuckMessenger()
    other_engine = create_engine(core.settings.database_url)
    try:
        first = Outbox(core.sessions, shared, clock)
        second = Outbox(session_factory(other_engine), shared, clock)
        stuck = asyncio.create_task(first.deliver())
        await shared.stuck.wait()
        clock.advance(first.lease + timedelta(seconds=1))
        assert await second.deliver() == 10
        shared.release.set()
        await stuck
    finally:
        await other_engine.dispose()
    sent = Counter(shared.sends)
    # Only the send that was on the wire when its lease ran out repeats.
    assert sum(sent.values()) == 11
    assert await outbox_rows(core) == {("sent", 1): 10}
