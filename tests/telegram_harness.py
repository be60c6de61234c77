"""Run the real aiogram bot against the fake Bot API server, in this process or as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.app import Core, build_core
from bot.channels.telegram import TelegramMessenger
from bot.clock import Clock
from bot.config import Settings
from bot.telegram_app import Poller, make_bot, make_dispatcher
from tests.conftest import STAFF_CHAT
from tests.fakes import FakeBotAPI

TOKEN = "123456:TEST-token"
MERCHANT = 424242
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningBot:
    core: Core
    bot: Bot
    dispatcher: Dispatcher
    task: asyncio.Task[Any]
    poller: Poller


def telegram_settings(database_url: str, api: FakeBotAPI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "staff_chat_id": STAFF_CHAT,
        "bot_token": TOKEN,
        "telegram_api_base": api.base_url,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


# Generous bounds for a loaded machine: they only decide how long a broken run takes to fail.
# Starting `python -m bot` (imports, migrations) has been seen to take 45 s on two busy cores.
PROCESS_START_TIMEOUT = 180.0
START_TIMEOUT = 60.0
STEP_TIMEOUT = 30.0


async def until_polling(
    api: FakeBotAPI,
    polls_before: int,
    timeout: float,  # noqa: ASYNC109 - handed on to the fake server's wait_for
    gone: asyncio.Future[Any],
) -> None:
    """Until the fake server has taken a getUpdates it had not taken before: the bot is polling.

    `gone` ends when the bot does (its task, its process): if that comes first, it will never poll.
    """
    polling = asyncio.ensure_future(
        api.wait_for(lambda: api.polls > polls_before, timeout=timeout, what="the bot's first getUpdates")
    )
    try:
        done, _ = await asyncio.wait({polling, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not polling.done():
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
    if polling in done:
        polling.result()  # the fake's report when it timed out
        return
    ended = gone.exception() if not gone.cancelled() else None
    raise AssertionError(f"the bot ended before it polled: {ended or gone.result()!r}")


@asynccontextmanager
async def running_bot(
    api: FakeBotAPI, settings: Settings, clock: Clock | None = None, per_second: float = 1000
) -> AsyncIterator[RunningBot]:
    """The production wiring (routers, middlewares, outbox), polling the fake server once this yields."""
    bot = make_bot(settings)
    core = await build_core(settings, TelegramMessenger(bot, per_second=per_second), clock)
    dispatcher = make_dispatcher(core)
    polls = api.polls
    poller = Poller(bot, dispatcher, timeout=1)
    task = asyncio.create_task(poller.run())
    try:
        await until_polling(api, polls, START_TIMEOUT, task)
        yield RunningBot(core, bot, dispatcher, task, poller)
    finally:
        poller.stop()
        await asyncio.wait_for(task, timeout=START_TIMEOUT)
        await bot.session.close()
        await core.close()


async def spawn_bot(
    api: FakeBotAPI, settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """`python -m bot run` as a separate process, for kill -9 tests; returns once it polls the fake server.

    `extra_env`: more settings, as environment variables (e.g. OUTBOX_LEASE_SECONDS)."""
    env = dict(os.environ)
    env.update(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": settings.telegram_api_base or "",
            "DATABASE_URL": settings.database_url,
            "FOLLOWUP_TICK_SECONDS": str(settings.followup_tick_seconds),
            "FOLLOWUP_LEASE_SECONDS": str(settings.followup_lease_seconds),
            "TELEGRAM_RATE_PER_SECOND": str(settings.telegram_rate_per_second),
            "LOG_LEVEL": "INFO",
            **({"STAFF_CHAT_ID": str(settings.staff_chat_id)} if settings.staff_chat_id is not None else {}),
            **(extra_env or {}),
        }
    )
    polls = api.polls
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=env, stdout=log, stderr=log
        )
    exited = asyncio.ensure_future(process.wait())
    try:
        await until_polling(api, polls, PROCESS_START_TIMEOUT, exited)
    except AssertionError as error:
        await stop(process)
        text = await asyncio.to_thread(log_path.read_text, errors="replace")
        raise AssertionError(f"{error}\nits log:\n{text[-3000:]}") from None
    finally:
        exited.cancel()
    return process


async def kill_hard(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, and SIGKILL if it has not ended in a generous while."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=START_TIMEOUT)
        except TimeoutError:
            await kill_hard(process)


class Chat:
    """The merchant's phone: what they type and press, and what they see."""

    def __init__(self, api: FakeBotAPI, user_id: int = MERCHANT) -> None:
        self.api = api
        self.user_id = user_id

    def seen(self) -> list[Any]:
        return self.api.sent(self.user_id)

    async def _next(self, action: Any, count: int = 1) -> Any:
        before = len(self.seen())
        update = action()
        await self.api.wait_for_messages(self.user_id, before + count, timeout=STEP_TIMEOUT)
        return update

    async def type(self, text: str, count: int = 1) -> Any:
        return await self._next(lambda: self.api.user_sends_text(self.user_id, text), count)

    async def press(self, label: str, count: int = 1) -> Any:
        message, data = self.find_button(label)
        return await self._next(lambda: self.api.user_presses(self.user_id, message, data), count)

    async def toggle(self, label: str) -> None:
        """A multi-choice button: the bot edits the question in place instead of sending anew."""
        message, data = self.find_button(label)
        edits = message.edits
        self.api.user_presses(self.user_id, message, data)
        await self.api.wait_for(lambda: message.edits > edits, timeout=STEP_TIMEOUT)

    def find_button(self, label: str) -> tuple[Any, str]:
        for message in reversed(self.seen()):
            for text, data in self.api.buttons(message):
                if text == label:
                    return message, data
        raise AssertionError(f"no button {label!r}; last message: {self.seen()[-1].text!r}")

    @property
    def last_text(self) -> str:
        return str(self.seen()[-1].text)


@asynccontextmanager
async def telegram_messenger(api: FakeBotAPI, per_second: float = 1000) -> AsyncIterator[TelegramMessenger]:
    """The production messenger, talking to the fake server."""
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    try:
        yield TelegramMessenger(bot, per_second=per_second)
    finally:
        await bot.session.close()
