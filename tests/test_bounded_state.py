"""What the bot keeps in memory per person stays bounded by who is talking now, not by everyone who ever
wrote: many merchants write through the real dispatcher, and the per-user and per-chat tables are counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Chat, Message, Update, User

from bot.app import Core, build_core
from bot.channels.telegram import ChatLimiters, TelegramMessenger
from bot.telegram_app import make_dispatcher
from tests.conftest import make_settings
from tests.fakes.offline import OfflineSession

TOKEN = "4242:BOUNDED"
FIRST = 30_000_000
WAVE = 150


class Wired:
    def __init__(self, core: Core, bot: Bot, dispatcher: Dispatcher, messenger: TelegramMessenger) -> None:
        self.core, self.bot, self.dispatcher, self.messenger = core, bot, dispatcher, messenger

    async def merchants_write(self, first: int, count: int, text: str = "/help") -> None:
        async def one(user_id: int) -> None:
            message = Message(
                message_id=1,
                date=datetime.now(UTC),
                chat=Chat(id=user_id, type="private"),
                from_user=User(id=user_id, is_bot=False, first_name="Shop", language_code="en"),
                text=text,
            )
            await self.dispatcher.feed_update(self.bot, Update(update_id=user_id, message=message))

        await asyncio.gather(*(one(user_id) for user_id in range(first, first + count)))


@pytest.fixture
async def wired(sqlite_url: str) -> AsyncIterator[Wired]:
    session = OfflineSession()
    bot = Bot(TOKEN, session=session)
    messenger = TelegramMessenger(bot, per_second=10_000, chats=ChatLimiters(sweep_at=100))
    core = await build_core(make_settings(sqlite_url), messenger)
    yield Wired(core, bot, make_dispatcher(core), messenger)
    await core.close()


async def test_no_per_user_lock_outlives_the_update_it_ordered(wired: Wired) -> None:
    await wired.merchants_write(FIRST, WAVE)
    assert wired.bot.session.calls >= WAVE  # type: ignore[attr-defined]  # each was answered
    assert len(wired.core.service._user_locks) == 0


async def test_aiogram_keeps_no_state_per_user(wired: Wired) -> None:
    """Conversation state is in SQL; aiogram's own in-memory FSM would hold a record for each user."""
    await wired.merchants_write(FIRST, WAVE)
    storage = wired.dispatcher.storage
    assert not getattr(storage, "storage", {})


async def test_send_limiters_are_kept_for_the_chats_spoken_to_lately_not_for_everyone(wired: Wired) -> None:
    await wired.merchants_write(FIRST, WAVE)
    await asyncio.sleep(1.1)  # the first wave's one-a-second limiters drain
    await wired.merchants_write(FIRST + WAVE, WAVE)
    assert len(wired.messenger.chats) <= WAVE < 2 * WAVE
