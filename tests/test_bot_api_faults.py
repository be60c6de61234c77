"""A misbehaving Bot API: 500s, 429s, time-outs, garbled answers and outages.

Every message still reaches its chat, in order; a send whose answer was lost is counted on its row (it may
show twice, and exactly those may); and a Bot API that fails every call is not hammered.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import insert, select

from bot.app import Core
from bot.channels.telegram import Breaker, ChatLimiters, TelegramMessenger
from bot.clock import FrozenClock
from bot.delivery.outbox import Outbox, tally
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.models import OutboxMessage
from tests.fakes import FakeBotAPI
from tests.telegram_harness import ROOT, TOKEN

FIRST_CHAT = 61_000_000


@asynccontextmanager
async def messenger_for(api: FakeBotAPI, **options: object) -> AsyncIterator[TelegramMessenger]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    try:
        # Telegram's one-a-second per chat would only make the test slow: the server here sets no such limit.
        chats = ChatLimiters(per_chat_per_second=1000)
        yield TelegramMessenger(bot, per_second=1000, chats=chats, **options)  # type: ignore[arg-type]
    finally:
        await bot.session.close()


async def queue(core: Core, chats: int, per_chat: int) -> dict[int, list[str]]:
    """Messages for each chat, queued interleaved as replies to many merchants are."""
    expected: dict[int, list[str]] = {FIRST_CHAT + c: [] for c in range(chats)}
    rows = []
    for i in range(per_chat):
        for chat_id, texts in expected.items():
            texts.append(f"step {i} for {chat_id}")
            rows.append(
                {
                    "chat_id": chat_id,
                    "payload": {"text": texts[-1]},
                    "purpose": "reply",
                    "status": "pending",
                    "attempts": 0,
                    "created_at": core.clock.now(),
                }
            )
    async with core.sessions() as session, session.begin():
        await session.execute(insert(OutboxMessage), rows)
    return expected


async def deliver_all(core: Core, outbox: Outbox, pause: float = 0.05) -> None:
    """The delivery job, tick after tick, with the outbox's clock moved past every back-off."""
    assert isinstance(core.clock, FrozenClock)
    for _ in range(2000):
        await outbox.deliver()
        if (await tally(core.sessions)).pending == 0:
            return
        core.clock.advance(timedelta(minutes=5))
        await asyncio.sleep(pause)
    raise AssertionError("the outbox never emptied")


def without_repeats(texts: list[str | None]) -> list[str | None]:
    return [text for i, text in enumerate(texts) if i == 0 or text != texts[i - 1]]


async def ambiguous_by_chat(core: Core) -> dict[int, int]:
    async with core.sessions() as session:
        rows = await session.execute(select(OutboxMessage.chat_id, OutboxMessage.ambiguous))
        counts: dict[int, int] = {}
        for chat_id, ambiguous in rows:
            counts[chat_id] = counts.get(chat_id, 0) + ambiguous
        return counts


@pytest.mark.parametrize("fault", ["500", "429", "timeout", "garbled"])
async def test_each_kind_of_bot_api_fault_still_delivers_every_message_in_order(core: Core, fault: str) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        expected = await queue(core, chats=8, per_chat=6)
        for chat_id in expected:
            api.add_user(chat_id, first_name=f"shop {chat_id}")
        if fault == "500":
            api.fail_rate("sendMessage", 500, 0.3, seed=1)
        elif fault == "429":
            api.fail_rate("sendMessage", 429, 0.2, seed=2, retry_after=1)
        elif fault == "timeout":  # carried out, but the answer comes after the client gave up
            api.delay_rate("sendMessage", 0.1, seconds=2, after_processing=True, seed=3)
        else:  # carried out, answered with half a body
            api.garble_rate("sendMessage", 0.15, seed=4)
        async with messenger_for(api, request_timeout=0.5) as messenger:
            outbox = Outbox(core.sessions, messenger, core.clock)
            await deliver_all(core, outbox)
        ambiguous = await ambiguous_by_chat(core)
        for chat_id, texts in expected.items():
            seen = [message.text for message in api.sent(chat_id)]
            assert without_repeats(seen) == texts
            # A message shows twice only after a send whose answer was lost, and each such send is counted.
            assert len(seen) - len(texts) == ambiguous[chat_id]
        counts = await tally(core.sessions)
        assert (counts.sent, counts.failed, counts.pending) == (48, 0, 0)
        if fault in ("timeout", "garbled"):
            assert counts.ambiguous_sends == outbox.stats.ambiguous > 0
        else:
            assert counts.ambiguous_sends == 0
            assert api.count_5xx + api.count_429 > 0


async def test_a_send_whose_answer_is_lost_is_counted_and_not_sent_again_at_once(core: Core) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        expected = await queue(core, chats=2, per_chat=2)
        first, second = expected
        api.add_user(first, first_name="Li")
        api.add_user(second, first_name="Zhao")
        api.delay_next("sendMessage", seconds=2, after_processing=True)  # the first chat's first message
        api.garble_next("sendMessage")  # the second chat's first message
        async with messenger_for(api, request_timeout=0.5) as messenger:
            outbox = Outbox(core.sessions, messenger, core.clock)
            assert await outbox.deliver() == 0
            # Both went out once; neither is sent again in the same breath, nor is what follows them.
            assert [len(api.sent(first)), len(api.sent(second))] == [1, 1]
            assert (await tally(core.sessions)).ambiguous_messages == 2
            await deliver_all(core, outbox)
        for chat_id, texts in expected.items():
            assert [m.text for m in api.sent(chat_id)] == [texts[0], texts[0], texts[1]]
        counts = await tally(core.sessions)
        assert (counts.sent, counts.ambiguous_sends, counts.ambiguous_messages) == (4, 2, 2)
        assert outbox.stats.ambiguous == 2


@pytest.mark.slow
async def test_an_outage_costs_a_bounded_number_of_calls_and_delivery_resumes_after(core: Core) -> None:
    """A 25-second outage as production may meet it, scaled down to 6 s, with the breaker's numbers scaled alike."""
    async with FakeBotAPI(token=TOKEN) as api:
        expected = await queue(core, chats=20, per_chat=3)
        for chat_id in expected:
            api.add_user(chat_id, first_name=f"shop {chat_id}")
        api.fail_for("sendMessage", seconds=6, status=500)
        breaker = Breaker(failures=3, pause=0.2, max_pause=1.0)
        async with messenger_for(api, breaker=breaker) as messenger:
            outbox = Outbox(core.sessions, messenger, core.clock)
            await deliver_all(core, outbox, pause=0.2)
        during_outage = api.count_5xx
        print(f"calls during a 6 s outage: {during_outage}; breaker opened {breaker.opened} times")
        # Three failures open it; then one probe per pause (0.2, 0.4, 0.8, 1, 1 s...): about ten in 6 s,
        # where a messenger without a breaker makes hundreds.
        assert 3 <= during_outage <= 15
        assert breaker.is_closed
        for chat_id, texts in expected.items():
            assert [m.text for m in api.sent(chat_id)] == texts
        counts = await tally(core.sessions)
        assert (counts.sent, counts.failed, counts.ambiguous_sends) == (60, 0, 0)


async def test_refusals_for_one_chat_never_stop_the_sends_to_the_others(core: Core) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        expected = await queue(core, chats=4, per_chat=5)
        blocked, *others = expected
        api.add_user(blocked, first_name="Gone")
        api.users[blocked].blocked = True  # 403 Forbidden: bot was blocked by the user
        for chat_id in others:
            api.add_user(chat_id, first_name=f"shop {chat_id}")
        api.fail_next("sendMessage", status=400, count=3, description="Bad Request: message text is empty")
        breaker = Breaker(failures=2, pause=30, max_pause=30)
        async with messenger_for(api, breaker=breaker) as messenger:
            outbox = Outbox(core.sessions, messenger, core.clock)
            await deliver_all(core, outbox)
        assert breaker.opened == 0
        delivered = {chat_id: [m.text for m in api.sent(chat_id)] for chat_id in others}
        async with core.sessions() as session:
            refused = (
                await session.execute(
                    select(OutboxMessage.chat_id, OutboxMessage.error).where(OutboxMessage.status == "failed")
                )
            ).all()
        assert len(refused) == 5 + 3 - 1  # the blocked chat's five, and three bad requests (one of them its)
        assert sum(len(texts) for texts in delivered.values()) == 15 - sum(chat != blocked for chat, _ in refused)
        assert {(error or "").split(":")[0] for _, error in refused} == {"unreachable", "rejected"}
        assert api.sent(blocked) == []


def test_the_breaker_opens_after_failures_in_a_row_probes_once_and_closes_on_success() -> None:
    now = [0.0]
    breaker = Breaker(failures=3, pause=1.0, max_pause=4.0, clock=lambda: now[0])
    calls = [object() for _ in range(10)]
    for call in calls[:2]:
        assert breaker.admit(call) == 0
        breaker.failed(call)
    breaker.succeeded(calls[2])  # a success in between: the count starts again
    for call in calls[3:6]:
        breaker.admit(call)
        breaker.failed(call)
    assert not breaker.is_closed and breaker.admit(calls[6]) == pytest.approx(1.0)
    now[0] = 1.0
    probe, other = calls[6], calls[7]
    assert breaker.admit(probe) == 0 and breaker.admit(other) > 0  # one probe at a time
    breaker.failed(probe)
    assert breaker.admit(other) == pytest.approx(2.0)  # the pause doubles
    now[0] = 3.0
    assert breaker.admit(other) == 0
    breaker.failed(other)
    now[0] = 7.0
    assert breaker.admit(probe) == 0  # 4 s: the longest pause
    breaker.succeeded(probe)
    assert breaker.is_closed and breaker.admit(calls[8]) == 0 and breaker.opened == 3


def test_posbot_outbox_tells_the_operator_how_many_sends_may_have_shown_twice(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"

    async def seed() -> None:
        await upgrade_async(url)
        engine = create_engine(url)
        now = datetime.now(UTC)
        rows = [
            {"chat_id": 1, "payload": {"text": "a"}, "status": "sent", "ambiguous": 2, "created_at": now},
            {"chat_id": 1, "payload": {"text": "b"}, "status": "sent", "ambiguous": 0, "created_at": now},
            {"chat_id": 2, "payload": {"text": "c"}, "status": "pending", "ambiguous": 1, "created_at": now},
            {"chat_id": 3, "payload": {"text": "d"}, "status": "failed", "ambiguous": 0, "created_at": now},
        ]
        async with session_factory(engine)() as session, session.begin():
            await session.execute(insert(OutboxMessage), [{"purpose": "reply", "attempts": 1, **r} for r in rows])
        await engine.dispose()

    asyncio.run(seed())
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "TELEGRAM_API_BASE")}
    env.update(DATABASE_URL=url, DEFAULT_LOCALE="en", STAFF_CHAT_ID="-100777")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "outbox"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Outbox: 1 waiting, 2 sent, 1 failed. Sends whose outcome was unknown (the Bot API's answer was lost; "
        "the message may show twice): 3, over 2 messages."
    )
