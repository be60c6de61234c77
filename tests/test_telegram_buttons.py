"""Button presses through the real aiogram bot and the fake Bot API: late, forged, or from the wrong place."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import STAFF_CHAT
from tests.fakes import FakeBotAPI
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
    async with running_bot(api, telegram_settings(sqlite_url, api)):
        chat = Chat(api)
        await chat.type("/repair")
        await chat.type("AB123456")
        api.fail_next("answerCallbackQuery", status=400, description=TOO_OLD)
        await chat.press("Network / SIM")
        assert chat.last_text == "Can you still take payments with this terminal?"
        texts = [m.text for m in chat.seen()]
    assert not any("something went wrong" in (t or "") for t in texts)
    assert len(api.calls("answerCallbackQuery")) == 1


FORGED = ["d:²:_skip", "fu:١:start", "st:99999999999:reached", "zz:1", "lang:fr", "d:1:" + "x" * 61]


async def test_forged_presses_are_answered_and_change_nothing(api: FakeBotAPI, sqlite_url: str) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api)):
        chat = Chat(api)
        await chat.type("/repair")
        question = chat.seen()[-1]
        for data in [*FORGED, "st:1:reached"]:
            answered = len(api.callback_answers)
            api.user_presses(MERCHANT, question, data, forged=True)
            await api.wait_for(lambda n=answered: len(api.callback_answers) > n, timeout=10)  # type: ignore[misc]
        assert api.sent(STAFF_CHAT) == []  # nothing reached the staff group
        await chat.type("AB123456")  # the dialogue is where it was
        assert chat.last_text.startswith("What kind of problem is it?")
    notes = [a.get("text") for a in api.callback_answers]
    # Undecodable data is "no longer valid"; a real staff button pressed by a merchant is refused,
    # in the merchant's language.
    assert notes == ["This button is no longer valid."] * len(FORGED) + ["Only staff can do this."]
    assert not [m for m in api.sent(MERCHANT) if "something went wrong" in (m.text or "")]


async def test_presses_in_the_staff_group_that_no_router_takes_are_answered(api: FakeBotAPI, sqlite_url: str) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api)):
        api.group_member_sends_text(STAFF_CHAT, 900001, "/install")
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=10)
        reply = api.sent(STAFF_CHAT)[-1]
        for data in ("fu:1:start", "d:0:_skip", "st:x:reached"):
            answered = len(api.callback_answers)
            api.user_presses(900001, reply, data, chat_id=STAFF_CHAT, forged=True)
            await api.wait_for(lambda n=answered: len(api.callback_answers) > n, timeout=10)  # type: ignore[misc]
        assert len(api.sent(STAFF_CHAT)) == 1
    assert [a.get("text") for a in api.callback_answers] == ["此按钮已失效。"] * 3
