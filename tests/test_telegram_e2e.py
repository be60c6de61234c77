"""The real aiogram bot over HTTP against the fake Bot API server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.storage.db import create_engine, session_factory
from bot.storage.models import Answer, Ticket
from tests.conftest import STAFF_CHAT
from tests.fakes import FakeBotAPI
from tests.telegram_harness import (
    MERCHANT,
    START_TIMEOUT,
    STEP_TIMEOUT,
    TOKEN,
    Chat,
    kill_hard,
    running_bot,
    spawn_bot,
    stop,
    telegram_settings,
)


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(MERCHANT, first_name="Wang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[900001])
        yield server


async def db_count(url: str, model: Any, *where: Any) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())
    finally:
        await engine.dispose()


async def test_merchant_reports_a_fault_through_telegram_and_staff_hear_of_it(api: FakeBotAPI, sqlite_url: str) -> None:
    settings = telegram_settings(sqlite_url, api)
    async with running_bot(api, settings):
        chat = Chat(api)
        await chat.type("/repair")
        assert "Which terminal has the problem?" in chat.last_text
        await chat.type("ab-778899")
        await chat.press("Network / SIM")
        await chat.press("Yes")
        await chat.type("no signal since this morning")
        api.user_sends_photo(MERCHANT)
        await api.wait_for_messages(MERCHANT, len(chat.seen()) + 1, timeout=STEP_TIMEOUT)
        await chat.press("Done")
        assert "Please try these first:" in chat.last_text
        await chat.press("No")
        await chat.press("Tomorrow afternoon", count=2)  # the question, then the share-phone keyboard
        await chat.type("13812345678")
        assert "Please check your answers:" in chat.last_text
        await chat.press("✅ Submit")
        assert "Your ticket is R-2026-" in chat.last_text or "Your ticket is R-" in chat.last_text
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)

    staff = api.sent(STAFF_CHAT)[-1].text
    assert "AB-778899" in staff and "138****5678" in staff and "13812345678" not in staff
    assert await db_count(sqlite_url, Ticket, Ticket.serial == "AB-778899", Ticket.status == "new") == 1
    assert await db_count(sqlite_url, Answer, Answer.question_key == "category") == 1
    # Every press was answered, so no button kept spinning.
    assert len(api.callback_answers) >= 6


async def test_the_same_update_delivered_twice_is_handled_once(api: FakeBotAPI, sqlite_url: str) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api)):
        chat = Chat(api)
        await chat.type("/repair")
        update = await chat.type("AB123456")
        shown = len(chat.seen())
        api.redeliver(update)
        await chat.type("/help", count=2)  # help, then the open question again
        assert len(chat.seen()) == shown + 2
    assert await db_count(sqlite_url, Answer) == 1


async def test_two_quick_presses_of_one_button_store_one_answer(api: FakeBotAPI, sqlite_url: str) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api)):
        chat = Chat(api)
        await chat.type("/repair")
        await chat.type("AB123456")
        message, data = chat.find_button("Printing")
        api.user_presses(MERCHANT, message, data)
        api.user_presses(MERCHANT, message, data)
        await api.wait_for(lambda: len(api.callback_answers) >= 2, timeout=STEP_TIMEOUT)
    assert await db_count(sqlite_url, Answer, Answer.question_key == "category") == 1
    texts = [a.get("text") for a in api.callback_answers]
    assert "This question is closed." in texts


async def test_bad_input_gets_a_short_localized_answer_and_changes_nothing(api: FakeBotAPI, sqlite_url: str) -> None:
    api.add_user(515151, first_name="Li", language_code="zh-hans")
    async with running_bot(api, telegram_settings(sqlite_url, api)):
        chat = Chat(api, 515151)
        await chat.type("/repair")
        await chat.type("AB123456")
        await chat.type("随便打字")
        assert chat.last_text == "请点击上方的按钮作答。"
        before = len(chat.seen())
        api.user_sends_sticker(515151)
        await api.wait_for_messages(515151, before + 1, timeout=STEP_TIMEOUT)
        assert chat.last_text == "请点击上方的按钮作答。"
        await chat.type("/nonsense")
        assert "/help" in chat.last_text
    assert await db_count(sqlite_url, Answer) == 1


async def test_help_lists_the_commands_in_the_merchants_language(api: FakeBotAPI, sqlite_url: str) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api)):
        chat = Chat(api)
        await chat.type("/help")
        for command in ("/repair", "/status", "/cancel", "/language"):
            assert command in chat.last_text
        await chat.type("/language")
        await chat.press("中文")
        assert chat.last_text == "已切换为中文。"


async def test_a_bot_killed_mid_dialogue_continues_at_the_same_step(
    api: FakeBotAPI, sqlite_url: str, tmp_path: Path
) -> None:
    settings = telegram_settings(sqlite_url, api)
    log = tmp_path / "bot.log"
    process = await spawn_bot(api, settings, log)
    try:
        chat = Chat(api)
        await chat.type("/repair")
        await chat.type("AB123456")
        await chat.press("Card reading")
        assert "Can you still take payments" in chat.last_text
        await kill_hard(process)

        # A press sent while the bot is down waits in Telegram's queue, as it would for real.
        message, data = chat.find_button("Yes")
        api.user_presses(MERCHANT, message, data)
        before = len(chat.seen())
        process = await spawn_bot(api, settings, log)
        await api.wait_for_messages(MERCHANT, before + 1, timeout=STEP_TIMEOUT)
        assert "Please describe the problem" in chat.last_text
    finally:
        await stop(process)
    assert await db_count(sqlite_url, Answer) == 3, log.read_text()


async def test_an_unexpected_error_gets_an_apology_and_the_bot_carries_on(api: FakeBotAPI, sqlite_url: str) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api)) as running:

        async def broken(*_: Any) -> None:
            raise RuntimeError("the ticket printer caught fire")

        running.core.registry.outcomes["repair_ticket"] = broken
        chat = Chat(api)
        await chat.type("/repair")
        await chat.type("AB123456")
        await chat.press("Something else")
        await chat.press("Yes")
        await chat.type("it beeps")
        await chat.press("Skip")
        await chat.press("Yes")
        await chat.press("✅ Submit")
        assert chat.last_text == "Sorry, something went wrong on our side. Please try again in a moment."
        await chat.type("/help", count=2)  # still answering; the report waits at its summary
        assert "Please check your answers:" in chat.last_text
    assert await db_count(sqlite_url, Ticket) == 0


async def test_webhook_mode_takes_updates_only_with_the_secret_token(api: FakeBotAPI, sqlite_url: str) -> None:
    import asyncio
    import socket

    from aiohttp import ClientSession

    from bot.telegram_app import run_telegram

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = telegram_settings(
        sqlite_url,
        api,
        webhook_url=f"http://127.0.0.1:{port}/telegram",
        webhook_listen=f"127.0.0.1:{port}",
        webhook_secret="s3cret-path-token",
    )
    bot_task = asyncio.create_task(run_telegram(settings))
    try:
        await api.wait_for(lambda: api.webhook is not None, timeout=START_TIMEOUT)
        assert api.webhook == {"url": f"http://127.0.0.1:{port}/telegram", "secret_token": "s3cret-path-token"}
        await Chat(api).type("/help")  # the fake server POSTs the update with the secret header
        assert "/repair" in Chat(api).last_text
        async with ClientSession() as client:
            forged = {
                "update_id": 999,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": MERCHANT, "type": "private"},
                    "from": {"id": MERCHANT, "is_bot": False, "first_name": "X"},
                    "text": "/repair",
                },
            }
            async with client.post(f"http://127.0.0.1:{port}/telegram", json=forged) as response:
                assert response.status == 401
    finally:
        bot_task.cancel()
        with __import__("contextlib").suppress(asyncio.CancelledError):
            await bot_task
