"""Button presses through the real aiogram bot and the fake Bot API: late, forged, or from the wrong place."""

from __future__ import annotations

from typing import Any

import pytest

from bot.testing.fake_bot_api import FakeBotAPI
from tests.conftest import STAFF_CHAT
from tests.telegram_harness import MERCHANT, TOKEN, Chat, running_bot, telegram_settings

TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(MERCHANT, first_name="Wang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[900001])
        yield server


async def test_a_press_too_old_to_answer_still_gets_its_reply_at_once(api: FakeBotAPI, sqlite_url: str) -> None:
    # No scheduler runs here: a reply that waited for the periodic outbox job would never come.
    async with running_bot(telegram_settings(sqlite_url, api)):
        chat = Chat(api)
        await chat.type("/repair")
        await chat.type("AB123456")
        api.fail_next("answerCallbackQuery", status=400, description=TOO_OLD)
        await chat.press("Network / SIM")
        assert chat.last_text == "Can you still take payments with this terminal?"
        texts = [m.text for m in chat.seen()]
    assert not any("something went wrong" in (t or "") for t in texts)
    assert len(api.calls("answerCallbackQuery")) == 1
