"""The fake Bot API server, driven by the real aiogram Bot over HTTP on 127.0.0.1.

What these tests pin down is that the fake answers as Telegram does (shapes, status codes,
descriptions), since the bot's other tests trust it in place of the real server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from aiohttp import web

from tests.fakes import TINY_PNG, FakeBotAPI

pytestmark = pytest.mark.asyncio

TOKEN = "123:ABC"
MERCHANT = 424242
OTHER = 515151
STAFF_CHAT = -100777
STAFF_MEMBER = 900001


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in buttons]])


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(MERCHANT, first_name="Wang", language_code="en")
        server.add_user(OTHER, first_name="Li", language_code="zh-hans")
        server.add_group(STAFF_CHAT, "After-sales staff", members=[STAFF_MEMBER])
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    real_bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    yield real_bot
    await real_bot.session.close()


@asynccontextmanager
async def polling(api: FakeBotAPI, bot: Bot, router: Router) -> AsyncIterator[Dispatcher]:
    """aiogram's own long polling against the fake, stopped the documented way."""
    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    task = asyncio.create_task(
        dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False)
    )
    await api.wait_for_calls("getMe", 1, timeout=2)  # asked first: polling has begun
    try:
        yield dispatcher
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(task, timeout=2)


async def raw_call(api: FakeBotAPI, method: str, token: str = TOKEN, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """A call without aiogram, to see the bare HTTP status and body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{api.base_url}/bot{token}/{method}", **kwargs) as response,
    ):
        return response.status, await response.json()


# ---- the basics -------------------------------------------------------------------------------------------


async def test_get_me_is_the_bot_user(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123, True, "posbot_test_bot")
    assert me.can_read_all_group_messages is False  # privacy mode, Telegram's default


async def test_wrong_token_is_401_and_unknown_method_is_404(api: FakeBotAPI) -> None:
    assert await raw_call(api, "getMe", token="123:WRONG") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await raw_call(api, "sendRocket") == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    wrong = Bot("123:WRONG", session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()


async def test_parameters_arrive_as_query_json_and_form(api: FakeBotAPI) -> None:
    by_query = await raw_call(api, "sendMessage", params={"chat_id": str(MERCHANT), "text": "query"})
    by_json = await raw_call(api, "sendMessage", json={"chat_id": MERCHANT, "text": "json"})
    by_form = await raw_call(api, "sendMessage", data={"chat_id": str(MERCHANT), "text": "form"})
    assert [status for status, _ in (by_query, by_json, by_form)] == [200, 200, 200]
    assert [m.text for m in api.sent(MERCHANT)] == ["query", "json", "form"]
    assert [m.message_id for m in api.sent(MERCHANT)] == [1, 2, 3]  # numbered per chat


# ---- sending ------------------------------------------------------------------------------------------------


async def test_send_message_with_an_inline_keyboard_returns_a_real_message(api: FakeBotAPI, bot: Bot) -> None:
    before = int(time.time())
    sent = await bot.send_message(MERCHANT, "Which terminal?", reply_markup=keyboard(("P300", "t:1"), ("A920", "t:2")))
    assert sent.message_id == 1 and sent.chat.id == MERCHANT and sent.chat.type == "private"
    assert sent.from_user is not None and sent.from_user.id == 123
    assert sent.date.timestamp() >= before
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump(exclude_none=True) == {
        "inline_keyboard": [[{"text": "P300", "callback_data": "t:1"}, {"text": "A920", "callback_data": "t:2"}]]
    }
    recorded = api.last(MERCHANT)
    assert (recorded.kind, recorded.method, recorded.text) == ("text", "sendMessage", "Which terminal?")
    assert api.buttons(recorded) == [("P300", "t:1"), ("A920", "t:2")]


async def test_a_reply_keyboard_is_kept_but_not_echoed_in_the_message(api: FakeBotAPI, bot: Bot) -> None:
    share = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Share my phone", request_contact=True)]])
    sent = await bot.send_message(MERCHANT, "Your phone number?", reply_markup=share)
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    assert api.keyboard(api.last(MERCHANT)) == ["Share my phone"]
    assert api.last(MERCHANT).reply_markup == {"keyboard": [[{"text": "Share my phone", "request_contact": True}]]}


async def test_photos_and_documents_upload_and_download(api: FakeBotAPI, bot: Bot) -> None:
    photo = await bot.send_photo(MERCHANT, BufferedInputFile(TINY_PNG, "fault.png"), caption="the screen")
    assert photo.photo is not None and photo.caption == "the screen"
    assert (photo.photo[-1].width, photo.photo[-1].height) == (1, 1)
    document = await bot.send_document(MERCHANT, BufferedInputFile(b"serial,model\n", "terminals.csv"))
    assert document.document is not None and document.document.file_name == "terminals.csv"
    assert document.document.mime_type == "text/csv"
    file = await bot.get_file(document.document.file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == b"serial,model\n"
    assert [m.kind for m in api.sent(MERCHANT)] == ["photo", "document"]
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(MERCHANT, BufferedInputFile(b"not an image", "x.png"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(MERCHANT, "no-such-file-id")


async def test_a_photo_a_user_sent_can_be_sent_on_by_file_id(api: FakeBotAPI, bot: Bot) -> None:
    update = api.user_sends_photo(MERCHANT, caption="broken screen")
    biggest = update["message"]["photo"][-1]["file_id"]
    forwarded = await bot.send_photo(STAFF_CHAT, biggest)
    assert forwarded.photo is not None and forwarded.photo[-1].file_id == biggest


async def test_html_parse_mode_is_parsed_and_checked(bot: Bot) -> None:
    sent = await bot.send_message(MERCHANT, "<b>Ticket</b> #12 &amp; more", parse_mode="HTML")
    assert sent.text == "Ticket #12 & more"
    assert sent.entities is not None and (sent.entities[0].type, sent.entities[0].length) == ("bold", 6)
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "shop" at byte offset 6'):
        await bot.send_message(MERCHANT, "Name: <shop> A", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Character '.' is reserved"):
        await bot.send_message(MERCHANT, "Done.", parse_mode="MarkdownV2")


# ---- Telegram's refusals -----------------------------------------------------------------------------------


async def test_blocked_and_deactivated_users_are_forbidden(api: FakeBotAPI, bot: Bot) -> None:
    api.block(MERCHANT)
    api.deactivate(OTHER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(MERCHANT, "hello")
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(OTHER, "hello")
    assert api.sent() == []  # refused sends are no messages
    assert [call.status for call in api.calls("sendMessage")] == [403, 403]
    api.user_sends_text(MERCHANT, "/start")  # writing to the bot again unblocks it
    await bot.send_message(MERCHANT, "welcome back")
    assert api.texts(MERCHANT) == ["welcome back"]


async def test_unknown_chat_is_chat_not_found(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "anyone?")
    status, body = await raw_call(api, "sendMessage", data={"chat_id": "999", "text": "x"})
    assert (status, body) == (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})


async def test_callback_data_over_64_bytes_is_button_data_invalid(api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(MERCHANT, "fits", reply_markup=keyboard(("ok", "x" * 64)))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(MERCHANT, "too long", reply_markup=keyboard(("no", "故障" * 11)))  # 66 bytes
    assert api.texts(MERCHANT) == ["fits"]


async def test_malformed_reply_markup_and_empty_or_long_text_are_bad_requests(api: FakeBotAPI, bot: Bot) -> None:
    status, body = await raw_call(api, "sendMessage", data={"chat_id": str(MERCHANT), "text": "x", "reply_markup": "{"})
    assert (status, body["description"]) == (400, "Bad Request: can't parse reply keyboard markup JSON object")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(MERCHANT, "   ")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(MERCHANT, "x" * 4097)
    await bot.send_message(MERCHANT, "x" * 4096)


async def test_edits_follow_telegrams_rules(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(MERCHANT, "Pick one", reply_markup=keyboard(("A", "a")))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Pick one", chat_id=MERCHANT, message_id=sent.message_id, reply_markup=keyboard(("A", "a"))
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=MERCHANT, message_id=99)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.edit_message_text("", chat_id=MERCHANT, message_id=sent.message_id)
    edited = await bot.edit_message_text("Picked A", chat_id=MERCHANT, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.edit_date is not None
    assert edited.reply_markup is None  # an edit without reply_markup takes the keyboard away
    recorded = api.last(MERCHANT)
    assert (recorded.text, recorded.edits, recorded.history) == (
        "Picked A",
        1,
        [("Pick one", keyboard(("A", "a")).model_dump(exclude_none=True))],
    )
    await bot.edit_message_reply_markup(chat_id=MERCHANT, message_id=sent.message_id, reply_markup=keyboard(("B", "b")))
    assert api.buttons(recorded) == [("B", "b")]
    assert await bot.delete_message(MERCHANT, sent.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(MERCHANT, sent.message_id)
    assert recorded.deleted


async def test_an_unknown_callback_query_is_too_old(bot: Bot) -> None:
    too_old = "query is too old and response timeout expired or query ID is invalid"
    with pytest.raises(TelegramBadRequest, match=too_old):
        await bot.answer_callback_query("123456789")


# ---- people, through aiogram's own polling -----------------------------------------------------------------


async def test_a_command_and_a_button_press_reach_handlers_through_polling(api: FakeBotAPI, bot: Bot) -> None:
    router = Router()
    seen_args: list[str | None] = []

    @router.message(Command("start"))
    async def start(message: Message, command: CommandObject) -> None:
        seen_args.append(command.args)
        await message.answer("Language?", reply_markup=keyboard(("English", "lang:en"), ("中文", "lang:zh")))

    @router.callback_query(F.data.startswith("lang:"))
    async def choose(query: CallbackQuery) -> None:
        await query.answer("Saved")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Language: {query.data}")

    async with polling(api, bot, router):
        api.user_sends_text(MERCHANT, "/start invite42")
        [question] = await api.wait_for_messages(MERCHANT, 1, timeout=2)
        update = api.user_presses(MERCHANT, question, "lang:zh")
        await api.wait_for(lambda: question.edits == 1, timeout=2)
    assert seen_args == ["invite42"]
    assert question.text == "Language: lang:zh"
    assert api.callback_answers == [{"callback_query_id": update["callback_query"]["id"], "text": "Saved"}]


async def test_pressing_a_button_that_is_not_there_fails_the_test(api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(MERCHANT, "Pick", reply_markup=keyboard(("A", "a")))
    with pytest.raises(AssertionError, match=r"no button with callback_data 'b'.*\('A', 'a'\)"):
        api.user_presses(MERCHANT, api.last(MERCHANT), "b")
    with pytest.raises(AssertionError, match="sent no message 7"):
        api.user_presses(MERCHANT, 7, "a")


async def test_a_redelivered_update_comes_again_with_the_same_id(api: FakeBotAPI, bot: Bot) -> None:
    router = Router()
    seen: list[int] = []

    @router.message()
    async def record(message: Message, event_update: Update) -> None:
        seen.append(event_update.update_id)
        await message.answer("ok")

    async with polling(api, bot, router):
        update = api.user_sends_text(MERCHANT, "AB123456")
        await api.wait_for_messages(MERCHANT, 1, timeout=2)
        again = api.redeliver(update)
        await api.wait_for_messages(MERCHANT, 2, timeout=2)
    assert again["update_id"] == update["update_id"]
    assert seen == [update["update_id"], update["update_id"]]


async def test_simulated_updates_are_valid_bot_api_updates(api: FakeBotAPI) -> None:
    updates = [
        api.user_sends_text(MERCHANT, "/repair now"),
        api.user_sends_photo(MERCHANT, caption="screen"),
        api.user_sends_document(MERCHANT, "receipt.pdf"),
        api.user_sends_contact(MERCHANT, "+8613812345678"),
        api.user_sends_sticker(MERCHANT),
        api.user_sends_voice(MERCHANT),
        api.user_sends_location(MERCHANT),
        api.group_member_sends_text(STAFF_CHAT, STAFF_MEMBER, "/install AB123456"),
    ]
    parsed = [Update.model_validate(update) for update in updates]
    assert [u.update_id for u in parsed] == list(range(1, 9))
    first = parsed[0].message
    assert first is not None and first.entities is not None
    assert (first.entities[0].type, first.entities[0].offset, first.entities[0].length) == ("bot_command", 0, 7)
    contact = parsed[3].message
    assert contact is not None and contact.contact is not None and contact.contact.user_id == MERCHANT
    group_message = parsed[-1].message
    assert group_message is not None and group_message.chat.type == "supergroup"


async def test_privacy_mode_hides_plain_group_chatter(api: FakeBotAPI, bot: Bot) -> None:
    api.group_member_sends_text(STAFF_CHAT, STAFF_MEMBER, "lunch anyone?")
    command = api.group_member_sends_text(STAFF_CHAT, STAFF_MEMBER, "/install AB123456")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [command["update_id"]]
    assert len(api.hidden_updates) == 1
    with pytest.raises(AssertionError, match="not a member"):
        api.group_member_sends_text(STAFF_CHAT, MERCHANT, "hi")


async def test_chat_members_and_chats(api: FakeBotAPI, bot: Bot) -> None:
    assert (await bot.get_chat_member(STAFF_CHAT, STAFF_MEMBER)).status == "member"
    assert (await bot.get_chat_member(STAFF_CHAT, MERCHANT)).status == "left"
    api.set_member_status(STAFF_CHAT, OTHER, "administrator")
    assert (await bot.get_chat_member(STAFF_CHAT, OTHER)).status == "administrator"
    chat = await bot.get_chat(STAFF_CHAT)
    assert (chat.type, chat.title) == ("supergroup", "After-sales staff")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(-100999)
    assert await bot.send_chat_action(MERCHANT, "typing") is True


async def test_commands_are_kept_per_scope_and_language(api: FakeBotAPI, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="repair", description="Report a fault")], language_code="en")
    assert [c.command for c in await bot.get_my_commands(language_code="en")] == ["repair"]
    assert await bot.get_my_commands() == []
    assert api.my_commands("en") == [{"command": "repair", "description": "Report a fault"}]
    await bot.delete_my_commands(language_code="en")
    assert await bot.get_my_commands(language_code="en") == []


# ---- getUpdates and webhooks ----------------------------------------------------------------------------------


async def test_a_parked_long_poll_is_answered_with_the_update_that_arrives(api: FakeBotAPI, bot: Bot) -> None:
    # How soon it answers is measured by `python -m benchmarks fake_api`, not asserted here.
    poll = asyncio.create_task(bot.get_updates(timeout=50))
    await api.wait_for(lambda: api.poll_waiting or poll.done(), timeout=10)
    assert api.poll_waiting, "getUpdates answered before any update was there"
    api.user_sends_text(MERCHANT, "hello")
    # A guard against a hang only: the poll asked to wait 50 s, so any answer before that is the wake-up.
    updates = await asyncio.wait_for(poll, timeout=45)
    assert [u.message.text for u in updates if u.message] == ["hello"]
    # Confirming with a higher offset forgets it.
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []
    assert api.pending_updates == []


async def test_a_second_poller_ends_the_first_with_409(api: FakeBotAPI, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_for_calls("getUpdates", 0, timeout=1)
    await asyncio.sleep(0.05)
    second = asyncio.create_task(bot.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, timeout=2)
    assert await second == []


async def test_webhook_mode_posts_updates_with_the_secret(api: FakeBotAPI, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        arrived.set()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        assert api.webhook == {"url": f"http://127.0.0.1:{port}/hook", "secret_token": "s3cret"}
        update = api.user_sends_text(MERCHANT, "via webhook")
        await asyncio.wait_for(arrived.wait(), timeout=2)
        assert received == [("s3cret", update)]
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count) == (f"http://127.0.0.1:{port}/hook", 0)
        assert await bot.delete_webhook(drop_pending_updates=True) is True
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


# ---- faults and limits --------------------------------------------------------------------------------------


async def test_injected_429_surfaces_as_retry_after(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(MERCHANT, "hello")
    assert caught.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in caught.value.message
    await bot.send_message(MERCHANT, "hello")  # the fault was for one call only
    assert api.count_429 == 1 and api.texts(MERCHANT) == ["hello"]


async def test_injected_5xx_are_server_errors_and_counted(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", status=502, count=2)
    api.fail_next("sendMessage", status=500)
    for _ in range(3):
        with pytest.raises(TelegramServerError):
            await bot.send_message(MERCHANT, "hello")
    assert api.count_5xx == 3 and api.sent() == []
    assert [c.status for c in api.calls("sendMessage")] == [502, 502, 500]


async def test_fail_rate_is_seeded_and_repeatable(api: FakeBotAPI) -> None:
    async def statuses() -> list[int]:
        api.fail_rate("getMe", status=500, probability=0.5, seed=7)
        return [(await raw_call(api, "getMe"))[0] for _ in range(20)]

    first, second = await statuses(), await statuses()
    assert first == second and set(first) == {200, 500}
    api.fail_rate("getMe", status=500, probability=0)
    assert (await raw_call(api, "getMe"))[0] == 200


async def test_global_rate_limit_answers_429_beyond_the_limit(api: FakeBotAPI, bot: Bot) -> None:
    api.set_rate_limit(per_second=20)
    results = await asyncio.gather(*(bot.send_message(MERCHANT, f"m{i}") for i in range(30)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, TelegramRetryAfter)]
    assert len(refused) == 10 and all(r.retry_after >= 1 for r in refused)
    assert len(api.sent(MERCHANT)) == 20 and api.count_429 == 10 == api.rate_limited


async def test_per_chat_limit_allows_one_message_a_second_in_a_private_chat(api: FakeBotAPI, bot: Bot) -> None:
    api.set_rate_limit(per_chat=True)
    await bot.send_message(MERCHANT, "first")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(MERCHANT, "second")
    await bot.send_message(OTHER, "another chat is fine")
    for _ in range(20):
        await bot.send_message(STAFF_CHAT, "group")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(STAFF_CHAT, "21st this minute")


async def test_a_delayed_call_whose_client_left_is_dropped(api: FakeBotAPI) -> None:
    api.delay_next("sendMessage", seconds=1.0)
    timeout = aiohttp.ClientTimeout(total=0.3)  # long enough to be read, too short for the answer
    with pytest.raises(TimeoutError):
        await raw_call(api, "sendMessage", data={"chat_id": str(MERCHANT), "text": "lost"}, timeout=timeout)
    await api.wait_for(lambda: api.dropped == 1, timeout=2)
    assert api.sent() == []


async def test_a_call_delayed_after_processing_is_sent_though_the_client_gave_up(api: FakeBotAPI) -> None:
    api.delay_next("sendMessage", seconds=1.0, after_processing=True)
    timeout = aiohttp.ClientTimeout(total=0.3)  # long enough to be read, too short for the answer
    with pytest.raises(TimeoutError):
        await raw_call(api, "sendMessage", data={"chat_id": str(MERCHANT), "text": "sent"}, timeout=timeout)
    assert api.texts(MERCHANT) == ["sent"] and api.dropped == 0


async def test_wait_for_times_out_with_a_clear_report(api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(MERCHANT, "the only message")
    with pytest.raises(AssertionError) as caught:
        await api.wait_for_messages(MERCHANT, 2, timeout=0.2)
    report = str(caught.value)
    assert "2 messages in chat 424242" in report and "'the only message'" in report


async def test_sent_calls_and_counters_use_telegram_method_names(api: FakeBotAPI) -> None:
    # Method names are case-insensitive on Telegram; the fake counts them under their real spelling.
    await raw_call(api, "SENDMESSAGE", data={"chat_id": str(MERCHANT), "text": "shouting"})
    assert api.method_counts["sendMessage"] == 1 == api.method_counts["sendmessage"] == api.call_count("SendMessage")
    [call] = api.calls("sendMessage")
    assert (call.status, call.params["text"], call.result["text"]) == (200, "shouting", "shouting")
    assert json.loads(json.dumps(call.result))["chat"]["id"] == MERCHANT


async def test_a_thousand_concurrent_sends_are_each_kept_once(api: FakeBotAPI) -> None:
    # How many a second the server answers is measured by `python -m benchmarks fake_api`.
    async with aiohttp.ClientSession() as session:
        url = f"{api.base_url}/bot{TOKEN}/sendMessage"
        gate = asyncio.Semaphore(32)

        async def send(i: int) -> None:
            async with gate, session.post(url, data={"chat_id": str(MERCHANT), "text": f"m{i}"}) as response:
                assert response.status == 200
                await response.read()

        await asyncio.gather(*(send(i) for i in range(1000)))
    sent = api.sent(MERCHANT)
    assert sorted(m.text or "" for m in sent) == sorted(f"m{i}" for i in range(1000))
    assert [m.message_id for m in sent] == list(range(1, 1001))
