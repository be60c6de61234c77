"""Updates sent while PostgreSQL is out of reach are handled once it is back: each once, in order per chat,
with the chat told once of the delay and the log saying it once. PostgreSQL stays up throughout: the bot
reaches it through a TCP proxy that the test cuts and restores."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.i18n import Translator
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Answer, Conversation, OutboxMessage, ProcessedUpdate
from bot.telegram_app import run_telegram
from tests.conftest import STAFF_CHAT
from tests.fakes import FakeBotAPI
from tests.fakes.db_proxy import DatabaseProxy
from tests.telegram_harness import START_TIMEOUT, STEP_TIMEOUT, TOKEN, running_bot, telegram_settings

pytestmark = pytest.mark.slow

CONTROL = 610000  # walks the same steps with the database up: what the others must see, in that order
CHATS = [610001 + i for i in range(6)]
NOTICE = Translator("en")("intake.delayed")
# Sent while the database is out: a serial (the first question's answer), words where buttons are
# expected, then /help (which shows the open question again). Out of order, they read differently.
DURING = ("ab-12345{i}", "hello", "/help")


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN, webhook_retry_delay=0.2) as server:
        for user in (CONTROL, *CHATS):
            server.add_user(user, first_name=f"m{user}", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[900001])
        yield server


def texts(api: FakeBotAPI, chat: int) -> list[str]:
    return [str(m.text) for m in api.sent(chat)]


async def walk(api: FakeBotAPI, chat: int, steps: tuple[str, ...]) -> list[Any]:
    """Send `steps` one after another, as fast as a person could, without waiting for answers."""
    return [api.user_sends_text(chat, step.format(i=chat % 10)) for step in steps]


async def control_walk(api: FakeBotAPI) -> list[str]:
    """The control chat's answers with the database up: /repair, then each of DURING, one at a time."""
    api.user_sends_text(CONTROL, "/repair")
    await api.wait_for_messages(CONTROL, 1, timeout=STEP_TIMEOUT)
    await walk(api, CONTROL, DURING)
    await api.wait_for(lambda: len(api.sent(CONTROL)) >= 5, timeout=STEP_TIMEOUT, what="the control chat's answers")
    await asyncio.sleep(0.5)  # a sixth answer, if any, would show here
    return texts(api, CONTROL)


async def database_figures(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:

            async def count(model: Any, *where: Any) -> int:
                query = select(func.count()).select_from(model).where(*where)
                return int((await session.execute(query)).scalar_one())

            return {
                "updates": await count(ProcessedUpdate),
                "conversations": await count(Conversation),
                "serials": await count(Answer, Answer.question_key == "terminal"),
                "unsent": await count(OutboxMessage, OutboxMessage.status != "sent"),
            }
    finally:
        await engine.dispose()


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "posbot.database" and r.levelno >= logging.WARNING]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def settled(url: str) -> None:
    """Until every reply so far is recorded as sent: the outage is to meet new updates, not a send being
    recorded (a send whose record the outage breaks is sent again later: the outbox's ambiguous send)."""
    for _ in range(int(STEP_TIMEOUT / 0.2)):
        if (await database_figures(url))["unsent"] == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("replies still unrecorded")


async def expect_all_answered(api: FakeBotAPI, control: list[str], chats: list[int]) -> None:
    """Every chat ends up with the control chat's answers, plus at most the one notice."""

    def done() -> bool:
        return all(len([t for t in texts(api, c) if t != NOTICE]) >= len(control) for c in chats)

    await api.wait_for(done, timeout=START_TIMEOUT, what="every chat's answers after the outage")
    await asyncio.sleep(1.0)  # anything sent twice would arrive now


async def test_polling_holds_updates_through_a_database_outage_and_handles_each_once_in_order(
    api: FakeBotAPI, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with DatabaseProxy.before(pg_url) as proxy:
        settings = telegram_settings(proxy.url(pg_url), api)
        async with running_bot(api, settings):
            control = await control_walk(api)
            for chat in CHATS:
                api.user_sends_text(chat, "/repair")
            await api.wait_for(lambda: all(api.sent(c) for c in CHATS), timeout=STEP_TIMEOUT)
            await settled(pg_url)

            await proxy.cut()
            for chat in CHATS:
                await walk(api, chat, DURING)
            # Every chat met the outage and was told; the updates keep being retried meanwhile.
            await api.wait_for(lambda: all(NOTICE in texts(api, c) for c in CHATS), timeout=STEP_TIMEOUT)
            await asyncio.sleep(3.0)
            await proxy.restore()

            await expect_all_answered(api, control, CHATS)

    for chat in CHATS:
        seen = texts(api, chat)
        assert seen.count(NOTICE) == 1, seen
        assert [t for t in seen if t != NOTICE] == control, seen
        assert seen.index(NOTICE) == 1  # after the answer to /repair, before anything sent in the outage
    figures = await database_figures(pg_url)
    every_update = (1 + len(CHATS)) * (1 + len(DURING))
    assert figures == {"updates": every_update, "conversations": 1 + len(CHATS), "serials": 1 + len(CHATS), "unsent": 0}
    assert len(outage_lines(caplog)) == 1, outage_lines(caplog)
    assert not tracebacks(caplog), tracebacks(caplog)


# ---- webhook mode ---------------------------------------------------------------------------------------


async def webhook_info(api: FakeBotAPI) -> dict[str, Any]:
    """getWebhookInfo, as the operator would call it: Telegram's record of the webhook's last error."""
    from aiohttp import ClientSession

    async with ClientSession() as client, client.post(f"{api.base_url}/bot{TOKEN}/getWebhookInfo") as response:
        body = await response.json()
    return dict(body["result"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def webhook_bot(api: FakeBotAPI, settings: Settings) -> AsyncIterator[None]:
    """`run_telegram` in webhook mode, in this process (so the test reads its log), until the block ends."""
    task = asyncio.create_task(run_telegram(settings))
    try:
        gone = asyncio.ensure_future(asyncio.shield(task))
        set_ = asyncio.ensure_future(api.wait_for(lambda: api.webhook is not None, timeout=START_TIMEOUT))
        done, _ = await asyncio.wait({gone, set_}, return_when=asyncio.FIRST_COMPLETED)
        if set_ not in done:
            set_.cancel()
            raise AssertionError(f"the bot ended before it set its webhook: {gone.exception()!r}")
        gone.cancel()
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_webhook_refuses_updates_during_a_database_outage_and_telegram_redelivers_them(
    api: FakeBotAPI, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    async with DatabaseProxy.before(pg_url) as proxy:
        settings = telegram_settings(
            proxy.url(pg_url),
            api,
            webhook_url=f"http://127.0.0.1:{port}/telegram",
            webhook_listen=f"127.0.0.1:{port}",
            webhook_secret="outage-secret",
        )
        async with webhook_bot(api, settings):
            control = await control_walk(api)
            for chat in CHATS:
                api.user_sends_text(chat, "/repair")
            await api.wait_for(lambda: all(api.sent(c) for c in CHATS), timeout=STEP_TIMEOUT)
            await settled(pg_url)

            await proxy.cut()
            for chat in CHATS:
                await walk(api, chat, DURING)
            # Telegram posts one update at a time and repeats the one refused: the first chat hears of the delay.
            await api.wait_for(lambda: NOTICE in texts(api, CHATS[0]), timeout=STEP_TIMEOUT)
            refused = await webhook_info(api)
            await asyncio.sleep(6.0)  # longer than the outbox job's 5 s: a scheduler tick meets the outage too
            await proxy.restore()

            await expect_all_answered(api, control, CHATS)

    assert "503" in str(refused.get("last_error_message")), refused
    for chat in CHATS:
        seen = texts(api, chat)
        assert seen.count(NOTICE) <= 1, seen
        assert [t for t in seen if t != NOTICE] == control, seen
    assert texts(api, CHATS[0]).count(NOTICE) == 1
    figures = await database_figures(pg_url)
    every_update = (1 + len(CHATS)) * (1 + len(DURING))
    assert figures == {"updates": every_update, "conversations": 1 + len(CHATS), "serials": 1 + len(CHATS), "unsent": 0}
    assert len(outage_lines(caplog)) == 1, outage_lines(caplog)
    assert not tracebacks(caplog), tracebacks(caplog)
