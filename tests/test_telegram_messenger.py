"""The Telegram messenger against the fake Bot API server: what Telegram answers is read as Telegram means it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.channels.telegram import TelegramMessenger
from bot.delivery.outbox import Outbox
from bot.storage.models import OutboxMessage
from tests.fakes import FakeBotAPI
from tests.fakes.wire import JSON, Params
from tests.telegram_harness import telegram_messenger

TOKEN = "123456:TEST-token"
SHOP = 818181


class EditsAnsweredTrue(FakeBotAPI):
    """Carries edits out, then answers `{"ok": true, "result": true}` instead of the edited Message.

    The Bot API promises `Message | True` for editMessageText, and True is what Telegram sends
    for inline messages; a bot must take either as success.
    """

    def _edit_message_text(self, params: Params) -> JSON | bool:  # type: ignore[override]
        super()._edit_message_text(params)
        return True


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with EditsAnsweredTrue(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        yield server


@pytest.fixture
async def telegram(api: FakeBotAPI) -> AsyncIterator[TelegramMessenger]:
    async with telegram_messenger(api) as messenger:
        yield messenger


async def test_an_edit_telegram_acknowledges_with_true_is_sent_once(
    core: Core, api: FakeBotAPI, telegram: TelegramMessenger
) -> None:
    shown = await telegram.send(SHOP, {"text": "Please choose the problem:", "reply_markup": None})
    assert shown is not None
    async with core.sessions() as session, session.begin():
        session.add(
            OutboxMessage(
                chat_id=SHOP,
                payload={"text": "Problem: the screen stays dark", "edit_message_id": shown},
                purpose="reply",
                status="pending",
                attempts=0,
                created_at=core.clock.now(),
            )
        )
    outbox = Outbox(core.sessions, telegram, core.clock)

    assert await outbox.deliver() == 1

    (message,) = api.sent(SHOP)
    assert (message.text, message.edits) == ("Problem: the screen stays dark", 1)
    assert [call.result for call in api.calls("editMessageText")] == [True]
    assert api.call_count("sendMessage") == 1  # the first message only: the edit was not said anew
    async with core.sessions() as session:
        (row,) = (await session.execute(select(OutboxMessage))).scalars()
    assert (row.status, row.attempts, row.message_id, row.error) == ("sent", 1, shown, None)


async def test_sends_held_up_on_the_way_never_put_more_than_the_limit_in_one_second() -> None:
    """Requests that leave evenly can reach Telegram bunched (a new connection, a busy loop or server).

    Here the first four are held before the server counts them, so they land together with the ones
    sent after them: the messenger still keeps every one-second window at the server within the limit.
    """
    limit, merchants = 10, 25
    async with FakeBotAPI(token=TOKEN) as server:
        for i in range(merchants):
            server.add_user(SHOP + 1 + i, first_name=f"shop {i}")
        server.set_rate_limit(per_second=limit)
        server.delay_next("sendMessage", seconds=0.4, count=4)
        async with telegram_messenger(server, per_second=limit) as telegram:
            sent = await asyncio.gather(
                *(telegram.send(SHOP + 1 + i, {"text": f"Survey {i}", "reply_markup": None}) for i in range(merchants))
            )
        assert all(message_id is not None for message_id in sent)
        assert len(server.sent()) == merchants
        assert (server.count_429, telegram.retry_after_count) == (0, 0)


async def test_keyboards_reach_telegram_as_the_bot_built_them(api: FakeBotAPI, telegram: TelegramMessenger) -> None:
    buttons = {"inline_keyboard": [[{"text": "Start", "callback_data": "f:1:start"}]]}
    contact = {"keyboard": [[{"text": "Share my phone number", "request_contact": True}]], "resize_keyboard": True}

    await telegram.send(SHOP, {"text": "How did the installation go?", "reply_markup": buttons})
    await telegram.send(SHOP, {"text": "Please share your phone number", "reply_markup": contact})
    await telegram.send(SHOP, {"text": "Thank you", "reply_markup": {"remove_keyboard": True}})

    markups = [message.reply_markup for message in api.sent(SHOP)]
    assert markups == [buttons, contact, {"remove_keyboard": True}]
    assert api.buttons(api.sent(SHOP)[0]) == [("Start", "f:1:start")]


async def test_evidence_goes_as_albums_and_mentions_as_entities(api: FakeBotAPI, telegram: TelegramMessenger) -> None:
    """A merchant's photos reach the staff group by file_id as one album, a lone document as a document, and a
    mention notifies by text_mention (no parse mode), exactly as the Bot API takes them."""
    api.add_group(-100777, title="Staff", members=[SHOP])
    photos = [api.user_sends_photo(SHOP, f"PH{i}")["message"]["photo"][-1]["file_id"] for i in range(3)]
    receipt = api.user_sends_document(SHOP, "receipt.pdf")["message"]["document"]["file_id"]

    album = [{"type": "photo", "media": file_id} for file_id in photos]
    first = await telegram.send(-100777, {"text": "R-2026-000001: photos", "media": album})
    single = await telegram.send(-100777, {"text": "", "media": [{"type": "document", "media": receipt}]})
    name = "王主管"
    text = f"⚠️ Overdue\n{name}"
    mention = {
        "type": "text_mention",
        "offset": 10,
        "length": 3,
        "user": {"id": SHOP, "is_bot": False, "first_name": name},
    }
    await telegram.send(-100777, {"text": text, "entities": [mention], "reply_markup": None})
    await telegram.send(-100777, {"text": "the merchant answers", "reply_to_message_id": single})
    await telegram.send(-100777, {"text": "under a message gone", "reply_to_message_id": 99_999})

    sent = api.sent(-100777)
    assert [m.method for m in sent] == ["sendMediaGroup"] * 3 + ["sendDocument"] + ["sendMessage"] * 3
    assert [m.file_id for m in sent[:3]] == photos and first == sent[0].message_id
    assert sent[0].text == "R-2026-000001: photos" and sent[1].text is None  # the caption rides on the first
    assert single == sent[3].message_id and sent[3].file_id == receipt
    assert sent[4].text == text and sent[4].entities[0]["user"]["id"] == SHOP
    assert sent[5].reply_to_message_id == single and sent[6].reply_to_message_id is None


async def test_the_per_chat_limiters_keep_only_the_chats_spoken_to_lately() -> None:
    """Memory does not grow with every merchant ever written to: drained limiters are dropped, busy ones kept."""
    from bot.channels.telegram import ChatLimiters

    limiters = ChatLimiters(sweep_at=100)  # one message a second per chat
    busy = limiters.for_chat(1)
    await busy.acquire()  # just spoken to: its bucket drains over the next second
    for chat_id in range(2, 101):
        limiters.for_chat(chat_id)  # created, never used: drained
    assert len(limiters) == 100
    limiters.for_chat(101)  # the table is full: the idle ones go
    assert len(limiters) == 2 and limiters.for_chat(1) is busy
    for chat_id in range(101, 5_000):
        limiters.for_chat(chat_id)
    assert len(limiters) < 200
