"""Sending 4,000 due follow-ups against a Bot API that enforces a global limit L with 429s.

Ours: the follow-up dispatcher (claims from SQLite, sends through the aiolimiter-based
messenger, records each result). The peer: the same 4,000 messages through
python-telegram-bot's AIORateLimiter configured for the same L, straight to the
server (no database), which is the library a team would otherwise reach for.

Each side meets a fresh fake Bot API server in a process of its own, so this process
does only the sender's work: beside each rate stands the sender's CPU time per message
(`cpu_ms_per_message`, this process's CPU time over the run / messages sent), the
figure that says what the bot costs rather than how busy the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.channels.telegram import ChatLimiters, TelegramMessenger
from bot.clock import FrozenClock
from bot.config import Settings
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import load_policy
from bot.scheduling.followups import FollowUpDispatcher
from bot.storage.db import create_engine, session_factory
from bot.storage.models import FollowUp
from bot.telegram_app import make_bot
from tests.fakes import seed_due_followups
from tests.fakes.process import ServerProcess

TOKEN = "4242:BENCH"
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FIRST_USER = 10_000_000
PEER_IN_FLIGHT = 64


async def ours(api: ServerProcess, url: str, count: int, limit: float) -> dict[str, Any]:
    settings = Settings(bot_token=TOKEN, telegram_api_base=api.base_url, database_url=url, _env_file=None)  # type: ignore[call-arg,arg-type]
    bot = make_bot(settings)
    # Told the server's own limit, as the peer is: the messenger's send window keeps every one-second window
    # at the server within it, however the requests bunch up on the way.
    messenger = TelegramMessenger(bot, per_second=limit, chats=ChatLimiters())
    engine = create_engine(url)
    policy = load_policy()
    dispatcher = FollowUpDispatcher(
        session_factory(engine),
        messenger,
        FrozenClock(NOW),
        policy,
        WorkCalendar.from_policy(policy),
        staff_chat_id=None,
        concurrency=64,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        while True:
            report = await dispatcher.tick()
            if report.sent == 0 and report.retried == 0:
                break
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        async with session_factory(engine)() as session:
            recorded = (await session.execute(select(func.count()).where(FollowUp.status == "sent"))).scalar_one()
    finally:
        await bot.session.close()
        await engine.dispose()
    return {"elapsed_s": elapsed, "cpu_s": cpu, "recorded": int(recorded), "retry_after": messenger.retry_after_count}


async def peer(api: ServerProcess, count: int, limit: float) -> dict[str, Any]:
    from telegram.ext import AIORateLimiter, ExtBot
    from telegram.request import HTTPXRequest

    limiter = AIORateLimiter(overall_max_rate=limit, overall_time_period=1, max_retries=10)
    request = HTTPXRequest(connection_pool_size=PEER_IN_FLIGHT)
    bot = ExtBot(TOKEN, base_url=f"{api.base_url}/bot", request=request, rate_limiter=limiter)
    # As many in flight as its connection pool holds, like our 64 workers: handed all 4,000 at once, httpx's
    # pool does work for every waiter on every request and gives up on those that wait over a second.
    gate = asyncio.Semaphore(PEER_IN_FLIGHT)
    failures = 0

    async def send(i: int) -> None:
        nonlocal failures
        try:
            async with gate:
                await bot.send_message(FIRST_USER + i, f"survey {i}")
        except Exception:
            failures += 1

    async with bot:
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(send(i) for i in range(count)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"elapsed_s": elapsed, "cpu_s": cpu, "failures": failures}


def delivered(stats: dict[str, Any], count: int) -> tuple[int, int, int]:
    """(chats that got their message, duplicates, lost) as the server saw them."""
    per_chat: dict[int, int] = stats["sent_by_chat"]
    got = sum(1 for i in range(count) if per_chat.get(FIRST_USER + i))
    duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
    return got, duplicates, count - got


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks dispatch")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--limit", type=float, default=200.0, help="the server's global messages a second")
    args = parser.parse_args(argv)
    count, limit = args.count, args.limit

    result: dict[str, Any] = {"bench": "dispatch", "limit_per_s": limit}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'dispatch.sqlite3'}"
        await seed_due_followups(url, count, FIRST_USER, NOW)
        async with ServerProcess(TOKEN) as api:
            await api.add_users(FIRST_USER, count)
            await api.set_rate_limit(per_second=int(limit))
            print(f"ours: {count} follow-ups at L={limit:g}/s", file=sys.stderr)
            server_cpu = (await api.stats())["cpu_s"]
            mine = await ours(api, url, count, limit)
            stats = await api.stats()
            got, duplicates, lost = delivered(stats, count)
            result.update(
                achieved_per_s=round(got / mine["elapsed_s"], 1),
                ratio=round(got / mine["elapsed_s"] / limit, 3),
                cpu_ms_per_message=per_message_ms(mine["cpu_s"], got),
                server_cpu_ms_per_message=per_message_ms(stats["cpu_s"] - server_cpu, got),
                sent=got,
                recorded=mine["recorded"],
                lost=lost,
                duplicates=duplicates,
                http_429=stats["count_429"],
            )
        async with ServerProcess(TOKEN) as api:
            await api.add_users(FIRST_USER, count)
            await api.set_rate_limit(per_second=int(limit))
            print(f"peer (python-telegram-bot AIORateLimiter): {count} messages at L={limit:g}/s", file=sys.stderr)
            server_cpu = (await api.stats())["cpu_s"]
            theirs = await peer(api, count, limit)
            stats = await api.stats()
            got, duplicates, lost = delivered(stats, count)
            result["peer"] = {
                "name": "python-telegram-bot AIORateLimiter",
                "achieved_per_s": round(got / theirs["elapsed_s"], 1),
                "ratio": round(got / theirs["elapsed_s"] / limit, 3),
                "cpu_ms_per_message": per_message_ms(theirs["cpu_s"], got),
                "server_cpu_ms_per_message": per_message_ms(stats["cpu_s"] - server_cpu, got),
                "sent": got,
                "lost": lost,
                "duplicates": duplicates,
                "http_429": stats["count_429"],
            }
    return result


def per_message_ms(cpu_s: float, messages: int) -> float | None:
    return round(cpu_s * 1000 / messages, 3) if messages else None
