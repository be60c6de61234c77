"""Hostile input through the handlers, as the product wires them: 10,000 random updates, and then some checks.

Updates are made by hypothesis and fed to the real aiogram Dispatcher (bot/app.py make_dispatcher) with
`feed_update`, on a real SQLite file; the bot's calls are answered by a local Bot API session that checks
what Telegram checks (text and caption length, empty texts, button data) and keeps every call. Huge texts,
emoji, control characters, SQL and HTML/Markdown fragments, edited messages, channel posts, member updates,
buttons the bot really sent pressed by anyone anywhere, forged button data of every codec shape with wrong
ids, photos and documents where text is expected, commands with odd arguments; from merchants, strangers,
staff and non-staff, in private chats, the staff group and another group. After every batch:

- nothing raised out of `feed_update`, and nothing was logged at ERROR (the errors router's apology is the
  last resort, not a way to pass this test), and Telegram refused no call;
- every stored answer validates against its form's question;
- nothing anyone typed was sent with a parse mode, so the staff group shows merchants' words literally.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import logging
import os
import re
from collections import defaultdict
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pytest
from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    GetMe,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import Chat, InlineKeyboardMarkup, Message, Update, User
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import Core, build_core
from bot.channels.telegram import ChatLimiters, TelegramMessenger
from bot.clock import FrozenClock
from bot.delivery.callbacks import CallbackData
from bot.dialogs import engine
from bot.storage.models import Answer, Submission
from bot.telegram_app import make_dispatcher
from tests.conftest import SHANGHAI, STAFF_CHAT, add_staff, linked_merchant, make_settings

TOKEN = "123456:HOSTILE-token"
BOT_ID = 123456
SHOP, OTHER_SHOP, STRANGER = 71001, 71002, 71003
ADMIN, SERVICE, NOT_STAFF = 90001, 90002, 90003
USERS = (SHOP, OTHER_SHOP, STRANGER, ADMIN, SERVICE, NOT_STAFF)
OTHER_GROUP, CHANNEL = -100555, -100999
PER_EXAMPLE = 25
# 400 x 25 = 10,000 updates; POSBOT_HOSTILE_EXAMPLES=8 for a quick look while fixing what it finds, and
# POSBOT_HOSTILE_RANDOM=1 for another 10,000 than the usual ones.
EXAMPLES = int(os.environ.get("POSBOT_HOSTILE_EXAMPLES", "400"))


def _units(text: str) -> int:
    """Telegram counts a text's length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class LocalBotAPI(BaseSession):
    """Answers every call at once, as Telegram would, refusing what Telegram refuses; keeps the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[TelegramMethod[Any], dict[str, Any]]] = []
        self.refused: list[str] = []
        self._ids = itertools.count(1000)
        self.buttons: dict[int, list[tuple[int, str]]] = defaultdict(list)  # chat -> (message id, data)
        self.messages: dict[int, list[int]] = defaultdict(list)  # chat -> ids of the bot's messages

    async def close(self) -> None:
        return None

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError
        yield b""

    def _refuse(self, method: TelegramMethod[Any], why: str) -> None:
        said = getattr(method, "text", None) or getattr(method, "caption", None) or ""
        where = getattr(method, "chat_id", None)
        self.refused.append(f"{type(method).__name__} to {where}: {why}: {len(said)} chars: {said[:300]!r}")
        raise TelegramBadRequest(method=method, message=f"Bad Request: {why}")

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> Any:
        resolved = {
            name: bot.default[value.name] if isinstance(value, Default) else value
            for name, value in method.model_dump(exclude_none=False).items()
        }
        self.calls.append((method, resolved))
        text = resolved.get("text")
        if isinstance(method, SendMessage | EditMessageText):
            if not isinstance(text, str) or not text.strip():
                self._refuse(method, "message text is empty")
            if _units(text) > 4096:
                self._refuse(method, "message is too long")
        caption = resolved.get("caption")
        if isinstance(caption, str) and _units(caption) > 1024:
            self._refuse(method, "message caption is too long")
        if isinstance(method, AnswerCallbackQuery) and isinstance(text, str) and _units(text) > 200:
            self._refuse(method, "MESSAGE_TOO_LONG")
        markup = getattr(method, "reply_markup", None)
        data: list[str] = []
        if isinstance(markup, InlineKeyboardMarkup):
            for row in markup.inline_keyboard:
                for button in row:
                    if not button.text:
                        self._refuse(method, "text buttons are unallowed in the inline keyboard")
                    if button.callback_data is not None:
                        if not 1 <= len(button.callback_data.encode()) <= 64:
                            self._refuse(method, "BUTTON_DATA_INVALID")
                        data.append(button.callback_data)
        if isinstance(method, GetMe):
            return User(id=BOT_ID, is_bot=True, first_name="posbot", username="posbot")
        if isinstance(method, SendMessage | SendPhoto | SendDocument | EditMessageText | SendMediaGroup):
            chat_id = int(resolved["chat_id"])
            if isinstance(method, EditMessageText):
                message_id = int(resolved["message_id"])
            else:
                message_id = next(self._ids)
                self.messages[chat_id] = [*self.messages[chat_id][-40:], message_id]
            self.buttons[chat_id] = [*self.buttons[chat_id][-60:], *((message_id, d) for d in data)]
            message = Message(
                message_id=message_id,
                date=datetime.now(UTC),
                chat=Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup"),
                from_user=User(id=BOT_ID, is_bot=True, first_name="posbot"),
                text=text if isinstance(text, str) else None,
            )
            return [message] if isinstance(method, SendMediaGroup) else message
        return True


# ---- what hostile people send -------------------------------------------------------------------------

FRAGMENTS = (
    "'; DROP TABLE answers; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM tickets;--",
    "<b>bold</b>",
    '<a href="tg://user?id=1">admin</a>',
    "</code><script>alert(1)</script>",
    "*bold* _italic_ __underline__ ~strike~ ||spoiler||",
    "[click](https://evil.example/)",
    "`code` ```pre```",
    "&lt;&amp;&gt;",
    "\\",
    "\x00",
    "\x1b[31m",
    "\u202e\u200b\ufeff",
    "\r\n\t",
    "🔧💥👨‍👩‍👧🇨🇳",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "13812345678",
    "+86 138 1234 5678",
    "6222 0212 3456 7890 123",
    "AB123456",
    "R-2026-000001",
    "C-2026-000001",
    "2026-12-01 10:00",
    "明天下午",
    "-",
    "1",
    "5",
    "11",
    "yes",
    "@posbot",
    "#hashtag",
    "%s %d {0} {phone}",
)

texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(FRAGMENTS),
    st.lists(st.sampled_from(FRAGMENTS), min_size=2, max_size=6).map(" ".join),
    # Huge: around and beyond Telegram's 4096 (a real client cannot send these; a forged update can).
    st.tuples(st.sampled_from(("x", "汉", "🔧", "<b>", "a\n", "13812345678 ")), st.integers(1000, 5000)).map(
        lambda t: (t[0] * t[1])[: t[1]]
    ),
)
names = st.one_of(st.just("Zhang"), st.sampled_from(FRAGMENTS), st.text(min_size=1, max_size=64))
languages = st.sampled_from([None, "en", "zh-hans", "zh-CN", "fr", "", "xx-YY-ZZ"])


def _flat_literals(hint: Any) -> list[Any]:
    if get_origin(hint) is Literal:
        values: list[Any] = []
        for arg in get_args(hint):
            values += _flat_literals(arg) if get_origin(arg) is Literal else [arg]
        return values
    return []


def forged(kind: type[CallbackData]) -> st.SearchStrategy[str]:
    """Data of the right shape for `kind`, with ids and words drawn at random: other people's cases,
    stale revisions, ids that never existed."""
    hints = get_type_hints(kind)
    parts: list[st.SearchStrategy[Any]] = []
    for field in dataclasses.fields(kind):  # type: ignore[arg-type]
        hint = hints[field.name]
        if hint is int:
            parts.append(st.one_of(st.integers(0, 12), st.sampled_from([2**31 - 1, 999_999, 10**9])))
        elif literals := _flat_literals(hint):
            parts.append(st.sampled_from(literals))
        else:
            parts.append(
                st.one_of(st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True), st.sampled_from(["_back", "_e:x"]))
            )

    def pack(values: tuple[Any, ...]) -> str:
        try:
            return kind(*values).pack()
        except (ValueError, TypeError):
            return ":".join([kind.prefix, *map(str, values)])

    return st.tuples(*parts).map(pack)


forged_data = st.sampled_from(sorted(CallbackData._kinds.values(), key=lambda k: k.prefix)).flatmap(forged)
garbage_data = st.one_of(
    st.text(max_size=80), st.sampled_from(["", ":", "cs:", "cs:1:take:extra", "da:-1:x", "cs:01:take", "cs:١:take"])
)


@st.composite
def plans(draw: st.DrawFn, commands: list[str]) -> dict[str, Any]:
    """One update, as a plan: turned into an Update at feed time, from what the bot has said so far."""
    kind = draw(
        st.sampled_from(
            ["press"] * 7 + ["text"] * 3 + ["command"] * 2 + ["file", "contact", "other", "edited", "channel", "member"]
        )
    )
    # Mostly merchants in their chats and staff in the group, so dialogues and cases get somewhere;
    # everyone everywhere often enough.
    user = draw(st.sampled_from([SHOP] * 4 + [OTHER_SHOP] * 2 + [ADMIN] * 2 + [SERVICE] * 2 + [STRANGER, NOT_STAFF]))
    usual = "private" if user in (SHOP, OTHER_SHOP, STRANGER) else "staff"
    plan: dict[str, Any] = {
        "kind": kind,
        "user": user,
        "where": draw(st.sampled_from([usual] * 6 + ["private", "staff", "other"])),
        "name": draw(names),
        "language": draw(languages),
        "redelivered": draw(st.integers(0, 30)) == 0,
    }
    if kind == "press":
        plan["source"] = draw(
            st.sampled_from(["latest"] * 8 + ["own"] * 2 + ["anywhere"] * 2 + ["stale", "forged", "forged", "garbage"])
        )
        plan["pick"] = draw(st.integers(0, 10**6))
        plan["forged"] = draw(forged_data)
        plan["garbage"] = draw(garbage_data)
        plan["no_message"] = draw(st.integers(0, 15)) == 0
    elif kind in ("text", "edited", "channel"):
        plan["text"] = draw(texts)
        plan["reply"] = draw(st.sampled_from([None, None, "bot", "bot", "random"]))
        plan["pick"] = draw(st.integers(0, 10**6))
    elif kind == "command":
        name = draw(
            st.one_of(
                st.sampled_from(["repair", "complaint", "start", "cancel", "status"]),
                st.sampled_from(commands),
                st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
            )
        )
        suffix = draw(st.sampled_from(["", "", "@posbot", "@otherbot", "@"]))
        args = draw(
            st.one_of(st.just(""), texts, st.sampled_from(["R-2026-000001", "1", "-1", "99999999999999999999"]))
        )
        plan["text"] = f"/{name.upper() if draw(st.booleans()) else name}{suffix}" + (f" {args}" if args else "")
        plan["reply"] = draw(st.sampled_from([None, None, "bot"]))
        plan["pick"] = draw(st.integers(0, 10**6))
    elif kind == "file":
        plan["file"] = draw(st.sampled_from(["photo", "document"]))
        plan["caption"] = draw(st.one_of(st.none(), texts))
        plan["file_name"] = draw(st.one_of(st.none(), texts))
        plan["reply"] = draw(st.sampled_from([None, "bot"]))
        plan["pick"] = draw(st.integers(0, 10**6))
    elif kind == "contact":
        plan["phone"] = draw(st.one_of(st.sampled_from(["13812345678", "+8613900001111", "123", ""]), texts))
        plan["own"] = draw(st.booleans())
    elif kind == "other":
        plan["content"] = draw(st.sampled_from(["location", "dice", "venue"]))
    elif kind == "member":
        plan["which"] = draw(st.sampled_from(["my_chat_member", "chat_member"]))
        plan["old"], plan["new"] = draw(st.sampled_from([("member", "left"), ("left", "member"), ("member", "kicked")]))
    return plan


# ---- the bot on a real SQLite file, fed through aiogram --------------------------------------------------


class Feeder:
    def __init__(self, core: Core, bot: Bot, api: LocalBotAPI) -> None:
        self.core = core
        self.bot = bot
        self.api = api
        self.dispatcher = make_dispatcher(core)
        self.update_ids = itertools.count(1)
        self.last_update_id = 0
        self.message_ids = itertools.count(1)
        self.fed = 0
        self.checked_answers = 0

    def _chat(self, plan: dict[str, Any]) -> dict[str, Any]:
        where = plan["where"]
        if where == "staff":
            return {"id": STAFF_CHAT, "type": "supergroup", "title": "<b>After-sales</b>"}
        if where == "other":
            return {"id": OTHER_GROUP, "type": "group", "title": "Elsewhere"}
        return {"id": plan["user"], "type": "private", "first_name": plan["name"]}

    def _user(self, plan: dict[str, Any]) -> dict[str, Any]:
        user = {"id": plan["user"], "is_bot": False, "first_name": plan["name"]}
        if plan["language"] is not None:
            user["language_code"] = plan["language"]
        return user

    def _bot_message(self, chat: dict[str, Any], pick: int) -> dict[str, Any]:
        ids = self.api.messages.get(chat["id"]) or [pick % 5000 + 1]
        return {
            "message_id": ids[pick % len(ids)],
            "date": 1_780_000_000,
            "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "posbot"},
            "text": "…",
        }

    def _message(self, plan: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self.message_ids),
            "date": 1_780_000_000,
            "chat": chat,
            "from": self._user(plan),
        }
        kind = plan["kind"]
        if kind in ("text", "edited", "channel", "command"):
            message["text"] = plan["text"]
        elif kind == "file":
            file = {"file_id": f"F{plan['user']}x{message['message_id']}", "file_unique_id": "u1"}
            if plan["file"] == "photo":
                message["photo"] = [{**file, "width": 90, "height": 90}]
            else:
                message["document"] = {**file, **({"file_name": plan["file_name"]} if plan["file_name"] else {})}
            if plan["caption"]:
                message["caption"] = plan["caption"]
        elif kind == "contact":
            owner = plan["user"] if plan["own"] else plan["user"] + 1
            message["contact"] = {"phone_number": plan["phone"], "first_name": plan["name"], "user_id": owner}
        elif kind == "other":
            message.update(
                {
                    "location": {"location": {"latitude": 31.2, "longitude": 121.5}},
                    "dice": {"dice": {"emoji": "🎲", "value": 3}},
                    "venue": {
                        "venue": {
                            "location": {"latitude": 31.2, "longitude": 121.5},
                            "title": plan["name"],
                            "address": "<b>1 Road</b>",
                        }
                    },
                }[plan["content"]]
            )
        if plan.get("reply") == "bot":
            message["reply_to_message"] = self._bot_message(chat, plan["pick"])
        elif plan.get("reply") == "random":
            message["reply_to_message"] = {**self._bot_message(chat, plan["pick"]), "from": self._user(plan)}
        return message

    def _press_data(self, plan: dict[str, Any], chat: dict[str, Any]) -> tuple[int | None, str | None]:
        source, pick = plan["source"], plan["pick"]
        own = self.api.buttons.get(chat["id"]) or []
        everywhere = [b for chat_buttons in self.api.buttons.values() for b in chat_buttons]
        if source == "latest" and own:  # the question in front of them: how dialogues and cases move on
            newest = [b for b in own if b[0] == own[-1][0]]
            return newest[pick % len(newest)]
        if source in ("own", "latest") and own:
            return own[pick % len(own)]
        if source in ("anywhere", "stale") and everywhere:
            message_id, data = everywhere[pick % len(everywhere)]
            if source == "stale":  # the same button, one of its numbers moved: another case, an older revision
                data = re.sub(r"\d+", lambda m: str(max(0, int(m.group()) + (pick % 5) - 2)), data, count=1)
            return message_id, data
        if source == "garbage":
            return None, plan["garbage"] or None
        return None, plan["forged"]

    def update(self, plan: dict[str, Any]) -> dict[str, Any]:
        if plan["redelivered"] and self.last_update_id:
            update_id = self.last_update_id
        else:
            update_id = self.last_update_id = next(self.update_ids)
        chat = self._chat(plan)
        kind = plan["kind"]
        if kind == "channel":
            channel = {"id": CHANNEL, "type": "channel", "title": "News"}
            post = {"message_id": next(self.message_ids), "date": 1_780_000_000, "chat": channel, "text": plan["text"]}
            key = "edited_channel_post" if plan["pick"] % 2 else "channel_post"
            if key == "edited_channel_post":
                post["edit_date"] = 1_780_000_100
            return {"update_id": update_id, key: post}
        if kind == "member":
            bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "posbot"}
            member = bot_user if plan["which"] == "my_chat_member" else self._user(plan)
            change = {
                "chat": chat,
                "from": self._user(plan),
                "date": 1_780_000_000,
                "old_chat_member": {"status": plan["old"], "user": member},
                "new_chat_member": {
                    "status": plan["new"],
                    "user": member,
                    **({"until_date": 0} if plan["new"] == "kicked" else {}),
                },
            }
            return {"update_id": update_id, plan["which"]: change}
        if kind == "press":
            message_id, data = self._press_data(plan, chat)
            query: dict[str, Any] = {"id": f"q{update_id}", "from": self._user(plan), "chat_instance": "ci"}
            if data is not None:
                query["data"] = data
            if plan["no_message"]:
                query["inline_message_id"] = "im1"
            else:
                shown = self._bot_message(chat, plan["pick"])
                if message_id is not None:
                    shown["message_id"] = message_id
                query["message"] = shown
            return {"update_id": update_id, "callback_query": query}
        message = self._message(plan, chat)
        if kind == "edited":
            message["edit_date"] = 1_780_000_100
            return {"update_id": update_id, "edited_message": message}
        return {"update_id": update_id, "message": message}

    async def feed(self, plans: list[dict[str, Any]]) -> None:
        for plan in plans:
            raw = self.update(plan)
            update = Update.model_validate(raw, context={"bot": self.bot})
            try:
                await self.dispatcher.feed_update(self.bot, update)
            except Exception as exc:
                raise AssertionError(f"feed_update raised {type(exc).__name__}: {exc}\nupdate: {raw!r:.2000}") from exc
            # Replies leave after the handler returns; people read them before they answer.
            await self.core.outbox.drain()
            self.fed += 1

    async def new_answers(self) -> list[tuple[Answer, Submission]]:
        async with self.core.sessions() as session:
            rows = await session.execute(
                select(Answer, Submission)
                .join(Submission, Submission.id == Answer.submission_id)
                .where(Answer.id > self.checked_answers)
                .order_by(Answer.id)
            )
            found = [(a, s) for a, s in rows.all()]
        if found:
            self.checked_answers = found[-1][0].id
        return found


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Garbage from earlier tests (an aiohttp session one of them left open) is reported by asyncio
        # whenever the collector meets it; this test's bot talks to an in-process Bot API, no aiohttp.
        if record.name == "asyncio" and record.getMessage().startswith("Unclosed"):
            return
        self.records.append(record)


@pytest.fixture
def errors() -> Iterator[ErrorLog]:
    gc.collect()  # what earlier tests left behind is reported now, before this test's log is read
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


async def _start(tmp_path: Path) -> tuple[Core, Bot, LocalBotAPI]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hostile.sqlite3'}"
    settings = make_settings(url, bot_token=TOKEN, admin_ids=str(ADMIN))
    api = LocalBotAPI()
    bot = Bot(TOKEN, session=api)
    messenger = TelegramMessenger(bot, per_second=100_000, chats=ChatLimiters(1e9, 1e12))
    clock = FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))
    core = await build_core(settings, messenger, clock)
    await linked_merchant(
        core, SHOP, name="<b>Lucky</b> *Noodles*", phone="13812345678", terminals=[("AB123456", "P300")]
    )
    await linked_merchant(core, OTHER_SHOP, name="Other Tea", phone="13911112222", terminals=[("CD654321", None)])
    await add_staff(core, SERVICE, "service", "Wang <i>Gong</i>")
    return core, bot, api


@pytest.mark.slow
def test_ten_thousand_hostile_updates_never_crash_a_handler_store_an_invalid_answer_or_render_markup(
    tmp_path: Path, errors: ErrorLog
) -> None:
    loop = asyncio.new_event_loop()
    core, bot, api = loop.run_until_complete(_start(tmp_path))
    feeder = Feeder(core, bot, api)
    commands = sorted({*core.registry.commands, *core.registry.staff_commands, "start", "help"})
    clock = core.clock
    assert isinstance(clock, FrozenClock)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not os.environ.get("POSBOT_HOSTILE_RANDOM"),  # the same 10,000 each run, unless exploring
        database=None,
        # No shrinking: the database carries on from example to example, so a shrunk replay would meet
        # another state; the failure names the update and what it met instead.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(plans(commands), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def batch(batch_plans: list[dict[str, Any]]) -> None:
        calls_before = len(api.calls)
        loop.run_until_complete(feeder.feed(batch_plans))
        clock.set(clock.now() + timedelta(minutes=7))
        assert not api.refused, api.refused[:5]
        assert not errors.records, [
            f"{r.name}: {r.getMessage()}\n{logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
            for r in errors.records[:3]
        ]
        for answer, submission in loop.run_until_complete(feeder.new_answers()):
            form = core.forms.get(submission.form_key, submission.form_version)
            if form is None:
                assert submission.form_key == "enquiry", (submission.form_key, submission.form_version)
                continue
            step = form.step(answer.question_key)
            assert engine.validate(step, answer.value), (form.key, step.key, step.kind, answer.value)
        for method, sent in api.calls[calls_before:]:
            # Telegram parses markup only when told to: no parse mode anywhere, so no text is read as markup.
            assert sent.get("parse_mode") is None, (type(method).__name__, sent.get("chat_id"))
            for item in sent.get("media") or []:
                assert item.get("parse_mode") is None
            kinds = {e["type"] for e in sent.get("entities") or []}
            assert kinds <= {"text_mention"}, kinds  # the bot's own mentions of staff, nothing else

    try:
        batch()
        if os.environ.get("POSBOT_HOSTILE_STATS"):
            loop.run_until_complete(_print_stats(core, api))
    finally:
        loop.run_until_complete(core.close())
        loop.run_until_complete(bot.session.close())
        loop.close()
    assert feeder.fed >= EXAMPLES * PER_EXAMPLE
    # The walk went somewhere: dialogues were answered and the staff group was written to.
    assert feeder.checked_answers > 0
    assert api.messages.get(STAFF_CHAT)


async def _print_stats(core: Core, api: LocalBotAPI) -> None:
    """How far the walk got (POSBOT_HOSTILE_STATS=1 with -s): cases by kind and state, forms, events, messages."""
    from sqlalchemy import func

    from bot.storage.models import OutboxMessage, Ticket, TicketEvent

    async with core.sessions() as session:
        for query in (
            select(Ticket.kind, Ticket.status, func.count()).group_by(Ticket.kind, Ticket.status),
            select(Submission.form_key, Submission.status, func.count()).group_by(
                Submission.form_key, Submission.status
            ),
            select(TicketEvent.action, func.count()).group_by(TicketEvent.action),
            select(OutboxMessage.purpose, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.purpose, OutboxMessage.status
            ),
        ):
            print([tuple(r) for r in (await session.execute(query)).all()])
        answers = (await session.execute(select(func.count()).select_from(Answer))).scalar()
    print("Bot API calls", len(api.calls), "answers", answers)


def said(plan_kind: str, user: int, where: str, **fields: Any) -> dict[str, Any]:
    """One scripted plan, for the cases the random walk found."""
    base = {"kind": plan_kind, "user": user, "where": where, "name": "Zhang", "language": "en", "redelivered": False}
    base.update({"reply": None, "pick": 0, "source": "latest", "forged": "", "garbage": "", "no_message": False})
    return {**base, **fields}


async def test_a_staff_answer_as_long_as_telegram_lets_staff_type_still_reaches_the_merchant(
    tmp_path: Path, errors: ErrorLog
) -> None:
    core, bot, api = await _start(tmp_path)
    feeder = Feeder(core, bot, api)
    try:
        await feeder.feed(
            [
                said("text", SHOP, "private", text="Can I get a second terminal?"),
                said("press", SHOP, "private", pick=0),  # Yes, send it to the service team
            ]
        )
        assert api.messages.get(STAFF_CHAT), "the enquiry reached the staff group"
        answer = "答" * 4096  # the most a Telegram client lets staff type
        await feeder.feed([said("text", SERVICE, "staff", text=answer, reply="bot", pick=-1)])
    finally:
        await core.close()
    assert not api.refused and not errors.records
    told = [sent["text"] for method, sent in api.calls if isinstance(method, SendMessage) and sent["chat_id"] == SHOP]
    assert "答" * 100 in told[-1] and told[-1].endswith("…")


def test_the_per_chat_limits_a_messenger_is_given_are_the_ones_it_keeps() -> None:
    """Found while feeding the walk: a fresh ChatLimiters is empty, so falsy, and was replaced by the default
    one message a second per chat."""
    limits = ChatLimiters(per_chat_per_second=50.0)
    messenger = TelegramMessenger(Bot(TOKEN, session=LocalBotAPI()), chats=limits)
    assert messenger.chats is limits
