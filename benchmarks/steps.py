"""The cost of a dialogue step: many merchants at once walking the repair report, against a bare echo bot.

Ours: the product's aiogram Dispatcher (`make_dispatcher` over `build_core`), fed each update with
`feed_update` as polling or the webhook would, every step committed to the database (a real SQLite file,
or PostgreSQL with `--db postgresql`). Each of `--chats` merchants types /repair and walks the form to
Submit; a step is done when the bot's replies for it have left (the Bot API call was made). The ceiling:
a bare aiogram echo handler fed the very same updates the same way.

No network: the bot's aiohttp session is the product's own (`AiohttpSession`), with its HTTP client
replaced by one that answers at once (message ids for sends, True for answerCallbackQuery), so the
product's real request path runs and only the wire is missing. Telegram's limits are set out of the way
(per chat, per group, overall): this measures what a step costs the bot, not how Telegram paces it.

`cpu_ms_per_step`: this process's CPU time over the concurrent run / steps. `p99_ms_one_chat`: one chat
alone walking the form, latency per step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.types import CallbackQuery, Message, Update
from sqlalchemy import func, select

from bot.app import build_core
from bot.channels.telegram import ChatLimiters, TelegramMessenger
from bot.config import Settings
from bot.storage.models import Ticket
from bot.telegram_app import make_dispatcher

TOKEN = "4242:BENCH"
BOT_ID = 4242
STAFF_CHAT = -100777
FIRST_USER = 20_000_000
# The walk of tests/test_telegram_e2e.py without the photo: (what the merchant does, replies it brings).
WALK: tuple[tuple[str, str, int], ...] = (
    ("type", "/repair", 1),
    ("type", "ab-778899", 1),
    ("press", "Network / SIM", 1),
    ("press", "Yes", 1),
    ("type", "no signal since this morning", 1),
    ("press", "Skip", 1),
    ("press", "No", 1),
    ("press", "Tomorrow afternoon", 2),
    ("type", "13812345678", 1),
    ("press", "✅ Submit", 1),
)
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
PG_DB = "posbot_bench_steps"
WARM = 4


class _Answer:
    def __init__(self, body: bytes) -> None:
        self.status = 200
        self._body = body

    async def __aenter__(self) -> _Answer:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode()


class Phone:
    """What the merchants' phones and the staff group received, and who is waiting for how much."""

    def __init__(self) -> None:
        self.sent: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.waiting: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self.message_ids = 0
        self.callback_answers = 0

    def record(self, chat_id: int, body: dict[str, Any]) -> int:
        self.message_ids += 1
        box = self.sent[chat_id]
        box.append({**body, "message_id": self.message_ids})
        waiter = self.waiting.get(chat_id)
        if waiter is not None and len(box) >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)
        return self.message_ids

    async def until(self, chat_id: int, count: int) -> None:
        if len(self.sent[chat_id]) >= count:
            return
        done = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = (count, done)
        try:
            await asyncio.wait_for(done, 60)
        finally:
            del self.waiting[chat_id]

    def button(self, chat_id: int, label: str) -> tuple[int, str]:
        for message in reversed(self.sent[chat_id]):
            markup = message.get("reply_markup") or {}
            if isinstance(markup, str):
                markup = json.loads(markup)
            for row in markup.get("inline_keyboard", ()):
                for button in row:
                    if button["text"] == label:
                        return message["message_id"], button["callback_data"]
        raise AssertionError(f"chat {chat_id}: no button {label!r} in {self.sent[chat_id][-1].get('text')!r}")


class NoNetwork:
    """Stands for aiohttp's ClientSession: every Bot API call is answered at once, as Telegram would."""

    closed = False

    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    def post(self, url: str, data: Any = None, **_: Any) -> _Answer:
        method = url.rsplit("/", 1)[-1]
        if isinstance(data, bytes):  # the messenger's JSON
            body = json.loads(data)
        else:  # aiogram's own form
            body = {options["name"]: value for options, _, value in data._fields}
        if method == "getMe":
            return _ok({"id": BOT_ID, "is_bot": True, "first_name": "Bench", "username": "bench_bot"})
        if method == "answerCallbackQuery":
            self.phone.callback_answers += 1
            return _ok(True)
        if method in ("sendMessage", "editMessageText"):
            chat_id = int(body["chat_id"])
            message_id = self.phone.record(chat_id, body)
            if method == "editMessageText":
                message_id = int(body["message_id"])
            chat = {"id": chat_id, "type": "supergroup" if chat_id < 0 else "private", "title": "x"}
            return _ok({"message_id": message_id, "date": 0, "chat": chat, "text": str(body.get("text", ""))})
        return _ok(True)

    async def close(self) -> None:
        return None


def _ok(result: object) -> _Answer:
    return _Answer(json.dumps({"ok": True, "result": result}).encode())


class OfflineSession(AiohttpSession):
    """The product's aiohttp session, its HTTP client swapped for `NoNetwork`."""

    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self._offline = NoNetwork(phone)

    async def create_session(self) -> Any:
        return self._offline

    async def close(self) -> None:
        return None


class Merchants:
    """Builds the updates the merchants send (as the Bot API would deliver them), numbered in order."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.update_id = 0
        self.fed: list[dict[str, Any]] = []

    def _user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "Wang", "language_code": "en"}

    def update(self, user_id: int, action: str, what: str) -> dict[str, Any]:
        self.update_id += 1
        chat = {"id": user_id, "type": "private", "first_name": "Wang"}
        if action == "type":
            message: dict[str, Any] = {
                "message_id": self.update_id,
                "date": 1_764_000_000,
                "chat": chat,
                "from": self._user(user_id),
                "text": what,
            }
            if what.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(what.split()[0])}]
            update = {"update_id": self.update_id, "message": message}
        else:
            message_id, data = self.phone.button(user_id, what)
            update = {
                "update_id": self.update_id,
                "callback_query": {
                    "id": str(self.update_id),
                    "from": self._user(user_id),
                    "chat_instance": str(user_id),
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "date": 1_764_000_000,
                        "chat": chat,
                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bench"},
                        "text": "question",
                    },
                },
            }
        self.fed.append(update)
        return update


Feed = Callable[[dict[str, Any]], Awaitable[None]]


async def walk(phone: Phone, merchants: Merchants, feed: Feed, user_id: int, latencies: list[float]) -> None:
    expected = 0
    for action, what, replies in WALK:
        update = merchants.update(user_id, action, what)
        expected += replies
        started = time.perf_counter()
        await feed(update)
        await phone.until(user_id, expected)
        latencies.append(time.perf_counter() - started)


async def replay(phone: Phone, updates: list[dict[str, Any]], feed: Feed, latencies: list[float]) -> None:
    """One chat's updates, each waiting for its echo."""
    for update in updates:
        chat_id = (update.get("message") or update["callback_query"]["message"])["chat"]["id"]
        started = time.perf_counter()
        before = len(phone.sent[chat_id])
        await feed(update)
        await phone.until(chat_id, before + 1)
        latencies.append(time.perf_counter() - started)


def feeder(dispatcher: Dispatcher, bot: Bot) -> Feed:
    async def feed(raw: dict[str, Any]) -> None:
        await dispatcher.feed_update(bot, Update.model_validate(raw, context={"bot": bot}))

    return feed


def echo_dispatcher() -> Dispatcher:
    router = Router()

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer()
        if query.message is not None:
            await query.bot.send_message(query.message.chat.id, query.data or "")  # type: ignore[union-attr]

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


async def prepare_postgres() -> str:
    import asyncpg

    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {PG_DB}")
    finally:
        await connection.close()
    return PG_URL + PG_DB


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks steps")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--chats", type=int, default=200)
    args = parser.parse_args(argv)
    chats = args.chats

    with tempfile.TemporaryDirectory() as folder:
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(folder) / 'steps.sqlite3'}"
        else:
            url = await prepare_postgres()
        settings = Settings(database_url=url, staff_chat_id=STAFF_CHAT, data_dir=Path(folder), _env_file=None)  # type: ignore[call-arg]
        phone = Phone()
        bot = Bot(TOKEN, session=OfflineSession(phone))
        # Telegram's pacing out of the way: the figure is the bot's own cost per step.
        messenger = TelegramMessenger(bot, per_second=1e6, chats=ChatLimiters(1e6, 1e8))
        core = await build_core(settings, messenger)
        try:
            feed = feeder(make_dispatcher(core), bot)
            merchants = Merchants(phone)
            # Warm up (imports, first statements, caches) with a few chats not counted.
            await asyncio.gather(*(walk(phone, merchants, feed, FIRST_USER - 1 - i, []) for i in range(WARM)))
            warm = len(merchants.fed)

            print(f"ours: {chats} merchants walk the repair report at once ({args.db})", file=sys.stderr)
            latencies: list[float] = []
            started, cpu_started = time.perf_counter(), time.process_time()
            await asyncio.gather(*(walk(phone, merchants, feed, FIRST_USER + i, latencies) for i in range(chats)))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            steps = len(latencies)
            ours_updates = merchants.fed[warm:]

            print("ours: one merchant alone", file=sys.stderr)
            alone: list[float] = []
            for i in range(5):
                await walk(phone, merchants, feed, FIRST_USER - 100 - i, alone)
            await drain(core)
            async with core.sessions() as session:
                tickets = (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
        finally:
            await core.close()

        print("echo: the same updates to a bare aiogram handler", file=sys.stderr)
        echo_phone = Phone()
        echo_bot = Bot(TOKEN, session=OfflineSession(echo_phone))
        echo_feed = feeder(echo_dispatcher(), echo_bot)
        by_chat: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for update in ours_updates:
            sender = (update.get("message") or update["callback_query"])["from"]["id"]
            by_chat[sender].append(update)
        await asyncio.gather(*(replay(echo_phone, by_chat[c][:2], echo_feed, []) for c in list(by_chat)[:4]))
        echo_latencies: list[float] = []
        echo_started = time.perf_counter()
        await asyncio.gather(*(replay(echo_phone, u, echo_feed, echo_latencies) for u in by_chat.values()))
        echo_elapsed = time.perf_counter() - echo_started

    steps_per_s = steps / elapsed
    echo_per_s = len(echo_latencies) / echo_elapsed
    print(
        f"tickets filed: {tickets} of {chats + WARM + 5} walks; staff notices: {len(phone.sent[STAFF_CHAT])}",
        file=sys.stderr,
    )
    return {
        "bench": "steps",
        "db": args.db,
        "chats": chats,
        "steps_per_s": round(steps_per_s, 1),
        "p50_ms": ms(statistics.median(latencies)),
        "p99_ms": ms(p99(latencies)),
        "p99_ms_one_chat": ms(p99(alone)),
        "echo_per_s": round(echo_per_s, 1),
        "ratio_to_echo": round(steps_per_s / echo_per_s, 3),
        "cpu_ms_per_step": round(cpu * 1000 / steps, 2),
    }


async def drain(core: Any) -> None:
    """Let whatever is still queued for delivery (the staff notices) go before the database closes."""
    courier = getattr(core.outbox, "drain", None)
    if courier is not None:
        await courier()
