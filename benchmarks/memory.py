"""Resident memory of one bot process: 100,000 merchants and 10,000 repair reports in progress in SQLite,
then each of those 10,000 chats sends one more message (the terminal's serial, the step the report waits
for) through the real aiogram dispatcher as `posbot run` wires it.

Each figure is a process of its own, so one does not inherit another's heap: the bot on that database
(`start_mb` before the messages, `rss_mb` after them; `growth_mb` the difference), the same process on an
empty database (`empty_mb`), and a bare `import aiogram` (`baseline_mb`, the floor of any aiogram bot).
Both databases have seen one start before (as a restart finds them): the very first start migrates and
plans the month's routine sample, and its figure is `first_start_mb`.
The bot's Bot API session answers without a network, so the figures are the bot's own memory; what the
process holds per chat after the messages is counted too (`user_locks`, `chat_limiters`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "4242:BENCH"
FIRST_USER = 10_000_000
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS in /proc/self/status")


def serial(i: int) -> str:
    return f"SN{i:06d}"


async def seed(url: str, merchants: int, conversations: int) -> None:
    """Linked merchants with a terminal each; the first `conversations` of them half-way into a repair
    report (asked which terminal), as `/repair` leaves them."""
    from sqlalchemy import insert

    from bot.storage.db import create_engine, upgrade_async
    from bot.storage.models import Conversation, Merchant, Submission, Terminal

    await upgrade_async(url)
    engine = create_engine(url)
    chunk = 10_000
    try:
        async with engine.begin() as connection:
            for start in range(0, merchants, chunk):
                ids = range(start, min(start + chunk, merchants))
                await connection.execute(
                    insert(Merchant),
                    [
                        {
                            "id": i + 1,
                            "name": f"shop {i}",
                            "phone": f"+86138{i:08d}",
                            "invite_code": f"seed{i}",
                            "telegram_user_id": FIRST_USER + i,
                            "key_account": False,
                            "routine_opt_out": False,
                            "unreachable": False,
                            "created_at": NOW,
                        }
                        for i in ids
                    ],
                )
                await connection.execute(
                    insert(Terminal), [{"serial": serial(i), "merchant_id": i + 1, "model": "P300"} for i in ids]
                )
            for start in range(0, conversations, chunk):
                ids = range(start, min(start + chunk, conversations))
                await connection.execute(
                    insert(Submission),
                    [
                        {
                            "id": i + 1,
                            "form_key": "repair",
                            "form_version": 2,
                            "telegram_user_id": FIRST_USER + i,
                            "merchant_id": i + 1,
                            "status": "in_progress",
                            "locale": "en",
                            "started_at": NOW,
                            "method": "chat",
                        }
                        for i in ids
                    ],
                )
                await connection.execute(
                    insert(Conversation),
                    [
                        {
                            "telegram_user_id": FIRST_USER + i,
                            "chat_id": FIRST_USER + i,
                            "locale": "en",
                            "locale_chosen": False,
                            "merchant_id": i + 1,
                            "submission_id": i + 1,
                            "state": in_progress_state(i),
                            "revision": 1,
                            "updated_at": NOW,
                        }
                        for i in ids
                    ],
                )
    finally:
        await engine.dispose()


def in_progress_state(i: int) -> dict[str, Any]:
    """The repair form's state right after `/repair`: asking which terminal."""
    return {
        "form_key": "repair",
        "form_version": 2,
        "phase": "asking",
        "answers": {},
        "history": [],
        "current": "terminal",
        "updated_at": "2026-11-24T10:00:00+08:00",
        "rev": 1,
        "pending": [],
        "editing": False,
        "context": {"terminals": [serial(i)], "phone": f"+86138{i:08d}"},
    }


# ---- the measured process ------------------------------------------------------------------------------


async def bot_process(url: str, chats: int) -> dict[str, Any]:
    """`posbot run`'s wiring on `url`, with a Bot API session that needs no network; `chats` chats each send
    their serial. RSS before and after."""
    core, bot, dispatcher, messenger = await wire(url)
    gc.collect()
    start = rss_mb()
    started = time.perf_counter()
    await feed(dispatcher, bot, 0, chats)
    elapsed = time.perf_counter() - started
    await core.outbox.deliver()
    gc.collect()
    after = rss_mb()
    answered = await _answered(core, chats)
    result = {
        "start_mb": start,
        "rss_mb": after,
        "elapsed_s": round(elapsed, 1),
        "answered": answered,
        "user_locks": len(core.service._user_locks),
        "chat_limiters": len(messenger.chats),
    }
    await core.close()
    return result


async def wire(url: str) -> tuple[Any, Any, Any, Any]:
    """The core, a bot whose session needs no network, the dispatcher and the messenger, as `posbot run`
    wires them."""
    from aiogram import Bot

    from bot.app import build_core
    from bot.channels.telegram import TelegramMessenger
    from bot.config import Settings
    from bot.telegram_app import make_dispatcher
    from tests.fakes.offline import OfflineSession

    settings = Settings(database_url=url, bot_token=TOKEN, staff_chat_id=-100500, _env_file=None)  # type: ignore[call-arg,arg-type]
    bot = Bot(TOKEN, session=OfflineSession())
    # Sends are paced at a rate no test of memory needs to wait for.
    messenger = TelegramMessenger(bot, per_second=100_000)
    core = await build_core(settings, messenger)
    return core, bot, make_dispatcher(core), messenger


async def feed(dispatcher: Any, bot: Any, first: int, count: int) -> None:
    """Chats first .. first + count - 1 each send their terminal's serial, as many at once as polling lets
    the dispatcher handle (`UPDATES_IN_FLIGHT`)."""
    from aiogram.types import Chat, Message, Update, User

    from bot.telegram_app import UPDATES_IN_FLIGHT

    chats = iter(range(first, first + count))

    async def worker() -> None:
        for i in chats:
            user = User(id=FIRST_USER + i, is_bot=False, first_name=f"m{i}", language_code="en")
            message = Message(
                message_id=2,
                date=datetime.now(UTC),
                chat=Chat(id=FIRST_USER + i, type="private"),
                from_user=user,
                text=serial(i),
            )
            await dispatcher.feed_update(bot, Update(update_id=1_000_000 + i, message=message))

    await asyncio.gather(*(worker() for _ in range(UPDATES_IN_FLIGHT)))


async def _answered(core: Any, chats: int) -> int:
    """Chats whose report moved past the terminal question."""
    from sqlalchemy import func, select

    from bot.storage.models import Conversation

    async with core.sessions() as session:
        moved = Conversation.revision > 1, Conversation.telegram_user_id < FIRST_USER + chats
        query = select(func.count()).where(*moved)
        return int((await session.execute(query)).scalar_one())


def child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child {args[:1]} failed:\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks memory")
    parser.add_argument("--merchants", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        full = f"sqlite+aiosqlite:///{Path(folder) / 'full.sqlite3'}"
        empty = f"sqlite+aiosqlite:///{Path(folder) / 'empty.sqlite3'}"
        print(f"seeding {args.merchants} merchants, {args.conversations} reports in progress", file=sys.stderr)
        await seed(full, args.merchants, args.conversations)
        print("bare import aiogram", file=sys.stderr)
        bare = child("--bare")
        # A first start migrates and plans the month's routine sample (with 100,000 merchants, 10,000
        # follow-ups): once a month, not what a running bot holds. Measured is the start after it.
        print("first starts (migrations, this month's planning)", file=sys.stderr)
        child("--bot", empty, "0")
        first = child("--bot", full, "0")
        print("the bot on an empty database", file=sys.stderr)
        on_empty = child("--bot", empty, "0")
        print(f"the bot on the full database, {args.conversations} chats send one message", file=sys.stderr)
        on_full = child("--bot", full, str(args.conversations))
    print(f"details: {json.dumps(on_full)}", file=sys.stderr)
    return {
        "bench": "memory",
        "merchants": args.merchants,
        "conversations": args.conversations,
        "rss_mb": on_full["rss_mb"],
        "baseline_mb": bare["rss_mb"],
        "growth_mb": round(on_full["rss_mb"] - on_full["start_mb"], 1),
        "over_baseline_mb": round(on_full["rss_mb"] - bare["rss_mb"], 1),
        "start_mb": on_full["start_mb"],
        "empty_mb": on_empty["start_mb"],
        "first_start_mb": first["start_mb"],
        "answered": on_full["answered"],
        "user_locks": on_full["user_locks"],
        "chat_limiters": on_full["chat_limiters"],
    }


def main() -> None:
    if sys.argv[1] == "--bare":
        import aiogram  # noqa: F401

        gc.collect()
        print(json.dumps({"rss_mb": rss_mb()}))
    else:
        url, chats = sys.argv[2], int(sys.argv[3])
        print(json.dumps(asyncio.run(bot_process(url, chats))))


if __name__ == "__main__":
    main()
