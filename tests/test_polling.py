"""Polling confirms an update to Telegram only once its handler has finished, and handles each update once.

The bot's own poller (bot/telegram_app.py, Poller) against the fake Bot API server, with a plain router whose
handler can be held: while it is held, no getUpdates passes the held update's id, so a process killed then
leaves it with Telegram, and the next process handles it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

from bot.telegram_app import Poller
from tests.fakes import FakeBotAPI
from tests.fakes.wire import POLL_CONFLICT
from tests.telegram_harness import STEP_TIMEOUT, spawn_bot, stop, telegram_settings

TOKEN = "123456:TEST-token"
SLOW, QUICK = 5101, 5102


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SLOW, first_name="Slow", language_code="en")
        server.add_user(QUICK, first_name="Quick", language_code="en")
        yield server


class Handling:
    """A dispatcher whose handler answers each text, and holds a text "slow" until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.handled: Counter[str] = Counter()
        router = Router()

        @router.message()
        async def on_message(message: Message) -> None:
            text = message.text or ""
            self.handled[text] += 1
            if text == "slow":
                await self.release.wait()
            await message.answer(f"done: {text}")

        self.dispatcher = Dispatcher(disable_fsm=True)
        self.dispatcher.include_router(router)


@contextlib.asynccontextmanager
async def polling(api: FakeBotAPI, handling: Handling) -> AsyncIterator[asyncio.Task[None]]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    poller = Poller(bot, handling.dispatcher, timeout=1)
    task = asyncio.create_task(poller.run())
    try:
        yield task
    finally:
        poller.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
        await bot.session.close()


def offsets(api: FakeBotAPI) -> list[int]:
    return [int(call.params.get("offset") or 0) for call in api.calls("getUpdates")]


async def test_an_update_is_confirmed_only_once_its_handler_has_finished(api: FakeBotAPI) -> None:
    handling = Handling()
    async with polling(api, handling):
        slow = api.user_sends_text(SLOW, "slow")["update_id"]
        await api.wait_for(lambda: handling.handled["slow"] == 1, timeout=30)
        # Other chats go on while it is held, and the poller keeps asking Telegram.
        quick = [api.user_sends_text(QUICK, f"quick {i}")["update_id"] for i in range(5)]
        await api.wait_for(lambda: len(api.sent(QUICK)) == 5, timeout=30)
        polls = api.call_count("getUpdates")
        await api.wait_for(lambda: api.call_count("getUpdates") > polls + 2, timeout=30)
        assert max(offsets(api)) <= slow  # nothing at or after the held update was confirmed
        assert slow in [update["update_id"] for update in api.pending_updates]  # Telegram still holds it
        handling.release.set()
        await api.wait_for(lambda: len(api.sent(SLOW)) == 1, timeout=30)
        # Once it is handled, the next getUpdates confirms it and everything after it.
        await api.wait_for(lambda: max(offsets(api)) > max(quick), timeout=30)
    assert api.pending_updates == []
    # Each update handled once, though Telegram handed the unconfirmed ones out again with each poll.
    assert handling.handled == Counter({"slow": 1, **{f"quick {i}": 1 for i in range(5)}})
    assert api.texts(SLOW) == ["done: slow"]
    assert api.texts(QUICK) == [f"done: quick {i}" for i in range(5)]


async def test_an_update_in_flight_when_the_poller_dies_is_handled_by_the_next(api: FakeBotAPI) -> None:
    first = Handling()
    async with polling(api, first) as task:
        api.user_sends_text(SLOW, "slow")
        await api.wait_for(lambda: first.handled["slow"] == 1, timeout=30)
        api.user_sends_text(QUICK, "quick")
        await api.wait_for(lambda: len(api.sent(QUICK)) == 1, timeout=30)
        task.cancel()  # as abrupt as the poller can end in-process: no grace, no last confirmation
    assert [update["message"]["text"] for update in api.pending_updates] == ["slow", "quick"]
    second = Handling()
    second.release.set()
    async with polling(api, second):
        await api.wait_for(lambda: len(api.sent(SLOW)) == 1, timeout=30)
        await api.wait_for(lambda: api.pending_updates == [], timeout=30)
    # The quick one comes again too (it was not confirmed yet); in the bot the processed-updates table makes
    # that a no-op.
    assert second.handled == Counter({"slow": 1, "quick": 1})


async def test_a_conflict_on_get_updates_costs_one_log_line_and_polling_goes_on(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next("getUpdates", status=409, count=2, description=POLL_CONFLICT)
    handling = Handling()
    with caplog.at_level(logging.INFO, logger="posbot"):
        async with polling(api, handling):
            api.user_sends_text(QUICK, "quick")
            await api.wait_for(lambda: len(api.sent(QUICK)) == 1, timeout=60)
    lines = [r.getMessage() for r in caplog.records if r.name == "posbot" and r.levelno >= logging.WARNING]
    assert lines == [f"another bot instance or a webhook takes this bot's updates ({POLL_CONFLICT}); retrying"]
    assert handling.handled == Counter({"quick": 1})


@pytest.mark.slow
async def test_posbot_run_stops_on_sigterm_confirming_what_it_handled(
    api: FakeBotAPI, sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    process = await spawn_bot(api, telegram_settings(sqlite_url, api, staff_chat_id=None), log)
    try:
        api.user_sends_text(QUICK, "/help")
        await api.wait_for(lambda: len(api.sent(QUICK)) == 1, timeout=STEP_TIMEOUT)
    finally:
        await stop(process)  # SIGTERM
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]
    text = log.read_text(errors="replace")
    assert "received SIGTERM: stopping" in text
    assert "polling stopped" in text
    assert "Traceback" not in text
    assert api.pending_updates == []  # the handled update was confirmed on the way out
