"""Replies before bulk: a merchant in a dialogue never waits behind follow-ups or behind the staff group's limit.

The real aiogram bot over HTTP against the fake Bot API server; what is asserted is the order in which the
server received things and what had (or had not) arrived when an update was done, never how long it took.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Update
from sqlalchemy import select

from bot.app import build_core
from bot.channels.telegram import ChatLimiters, TelegramMessenger
from bot.clock import FrozenClock
from bot.storage.db import create_engine, session_factory
from bot.storage.models import OutboxMessage
from bot.telegram_app import make_bot, make_dispatcher
from tests.conftest import STAFF_CHAT
from tests.fakes import FakeBotAPI, seed_due_followups
from tests.telegram_harness import MERCHANT, STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings

pytestmark = pytest.mark.e2e

# Tuesday 10:00 in Shanghai: a working morning, the follow-ups are due.
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FIRST_SHOP = 30_000_000
SHOPS = 300
OTHER_MERCHANT = 525252


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(MERCHANT, first_name="Wang", language_code="en")
        server.add_user(OTHER_MERCHANT, first_name="Li", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[900001])
        yield server


def follow_ups(messages: list[Any]) -> int:
    return sum(1 for m in messages if FIRST_SHOP <= m.chat_id < FIRST_SHOP + SHOPS)


async def test_a_reply_to_repair_goes_out_while_a_batch_of_follow_ups_is_still_going(
    api: FakeBotAPI, sqlite_url: str
) -> None:
    await seed_due_followups(sqlite_url, SHOPS, FIRST_SHOP, NOW)
    for i in range(SHOPS):
        api.add_user(FIRST_SHOP + i, first_name=f"m{i}")
    api.set_rate_limit(per_second=8)
    settings = telegram_settings(sqlite_url, api, telegram_rate_per_second=8)
    async with running_bot(api, settings, FrozenClock(NOW), per_second=8) as running:
        batch = asyncio.create_task(running.core.dispatcher.tick())
        try:
            await api.wait_for(lambda: follow_ups(api.sent()) >= 16, timeout=STEP_TIMEOUT)
            before = len(api.sent())
            await Chat(api).type("/repair")
            received = api.sent()
            reply = next(i for i, m in enumerate(received) if m.chat_id == MERCHANT)
            ahead = follow_ups(received[before:reply])
        finally:
            batch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batch
    assert "Which terminal has the problem?" in str(received[reply].text)
    # The batch was far from done, and the reply waited behind at most the few sends already admitted.
    assert follow_ups(received[:reply]) < SHOPS // 2
    assert ahead <= 5, f"{ahead} follow-ups went out between the merchant's /repair and its reply"


class FedChat(Chat):
    """A merchant whose updates are fed straight to the dispatcher: each returns when its handler has."""

    def __init__(self, api: FakeBotAPI, user_id: int, feed: Any) -> None:
        super().__init__(api, user_id)
        self.feed = feed

    async def _next(self, action: Any, count: int = 1) -> Any:
        before = len(self.seen())
        update = action()
        await self.feed(update)
        await self.api.wait_for_messages(self.user_id, before + count, timeout=STEP_TIMEOUT)
        return update


async def test_a_submitted_report_is_done_while_the_staff_group_limit_still_holds_its_notice(
    api: FakeBotAPI, sqlite_url: str
) -> None:
    settings = telegram_settings(sqlite_url, api)
    bot = make_bot(settings)
    # The staff group may hear one message a minute, and has just heard it.
    messenger = TelegramMessenger(bot, per_second=1000, chats=ChatLimiters(per_group_per_minute=1))
    await messenger.chats.for_chat(STAFF_CHAT).acquire()
    core = await build_core(settings, messenger)
    dispatcher = make_dispatcher(core)

    async def feed(update: dict[str, Any]) -> None:
        # Returns once the update's handler has: a handler waiting on the staff limit would not, in time.
        await asyncio.wait_for(
            dispatcher.feed_update(bot, Update.model_validate(update, context={"bot": bot})), STEP_TIMEOUT
        )

    try:
        wang = FedChat(api, MERCHANT, feed)
        await wang.type("/repair")
        await wang.type("ab-778899")
        await wang.press("Network / SIM")
        await wang.press("Yes")
        await wang.type("no signal since this morning")
        await wang.press("Skip")
        await wang.press("No")
        await wang.press("Tomorrow afternoon", count=2)
        await wang.type("13812345678")
        await wang.press("✅ Submit")
        assert "Your ticket is R-" in wang.last_text
        # The next update, in another chat, is answered; the staff notice still waits for the group's limit.
        li = FedChat(api, OTHER_MERCHANT, feed)
        await li.type("/help")
        assert "/repair" in li.last_text
        assert api.sent(STAFF_CHAT) == []
    finally:
        await core.close()
        await bot.session.close()

    # Not lost: the notice is in the outbox, for the delivery job to send when the limit allows.
    engine = create_engine(sqlite_url)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.execute(select(OutboxMessage).where(OutboxMessage.chat_id == STAFF_CHAT))).scalars()
            waiting = [m.status for m in rows]
    finally:
        await engine.dispose()
    assert waiting == ["pending"]
