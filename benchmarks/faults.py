"""A misbehaving Bot API: how many calls an outage costs, and how many sends end with their outcome unknown.

outage: 300 due follow-ups, sent by the follow-up dispatcher (32 at a time, one tick a second), meet a
Bot API that answers every sendMessage with 500 for `--outage` seconds (25 by default). Measured with the
breaker as shipped and without one (`TELEGRAM_BREAKER_FAILURES=0`): the calls the server took during the
outage, and the seconds from its end until every follow-up was delivered.

ambiguous: 200 replies in the outbox (40 chats) meet a Bot API that answers 5 % of sends only after
1.5 s, having carried them out. With a total request time-out of 1 s each of those is a send whose
outcome is unknown, sent again later and shown twice; with the shipped 15 s none is.

The fake Bot API runs in a process of its own; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bot.channels.telegram import Breaker, ChatLimiters, TelegramMessenger
from bot.clock import SystemClock
from bot.config import Settings
from bot.delivery.outbox import Outbox, tally
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import load_policy
from bot.scheduling.followups import FollowUpDispatcher
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.models import FollowUp, OutboxMessage
from bot.telegram_app import make_bot
from tests.fakes import seed_due_followups
from tests.fakes.process import ServerProcess

TOKEN = "4242:BENCH"
FIRST_USER = 20_000_000


def settings_for(api: ServerProcess, url: str, **values: Any) -> Settings:
    return Settings(bot_token=TOKEN, telegram_api_base=api.base_url, database_url=url, _env_file=None, **values)  # type: ignore[call-arg,arg-type]


async def outage(folder: Path, count: int, seconds: float, breaker: bool) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{folder / f'outage-{breaker}.sqlite3'}"
    clock = SystemClock()
    await seed_due_followups(url, count, FIRST_USER, clock.now())
    async with ServerProcess(TOKEN) as api:
        await api.add_users(FIRST_USER, count)
        settings = settings_for(api, url, **({} if breaker else {"telegram_breaker_failures": 0}))
        bot = make_bot(settings)
        messenger = TelegramMessenger.for_settings(bot, settings)
        engine = create_engine(url)
        policy = load_policy()
        dispatcher = FollowUpDispatcher(
            session_factory(engine),
            messenger,
            clock,
            policy,
            WorkCalendar.from_policy(policy),
            staff_chat_id=None,
            concurrency=32,
        )
        await api.fault("fail_for", method="sendMessage", seconds=seconds, status=500)
        started = time.perf_counter()
        over = started + seconds
        try:
            while True:
                await dispatcher.tick()
                async with session_factory(engine)() as session:
                    sent = (await session.execute(select(func.count()).where(FollowUp.status == "sent"))).scalar_one()
                if sent >= count:
                    break
                await asyncio.sleep(1.0)
            done = time.perf_counter()
        finally:
            await bot.session.close()
            await engine.dispose()
        stats = await api.stats()
    return {
        "calls_during_outage": stats["count_5xx"],
        "calls_per_s_during_outage": round(stats["count_5xx"] / seconds, 2),
        "resumed_after_s": round(max(done - over, 0.0), 1),
        "delivered": sum(1 for n in stats["sent_by_chat"].values() if n),
        "breaker_opened": messenger.breaker.opened,
    }


async def ambiguous(folder: Path, request_timeout: float) -> dict[str, Any]:
    timeout = request_timeout
    url = f"sqlite+aiosqlite:///{folder / f'ambiguous-{timeout}.sqlite3'}"
    await upgrade_async(url)
    clock = SystemClock()
    chats, per_chat = 40, 5
    rows = [
        {
            "chat_id": FIRST_USER + c,
            "payload": {"text": f"reply {i}"},
            "purpose": "reply",
            "status": "pending",
            "attempts": 0,
            "created_at": clock.now(),
        }
        for i in range(per_chat)
        for c in range(chats)
    ]
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await session.execute(insert(OutboxMessage), rows)
    async with ServerProcess(TOKEN) as api:
        await api.add_users(FIRST_USER, chats)
        await api.fault(
            "delay_rate", method="sendMessage", probability=0.05, seconds=1.5, after_processing=True, seed=7
        )
        settings = settings_for(api, url, telegram_request_timeout_seconds=timeout)
        bot = make_bot(settings)
        messenger = TelegramMessenger(
            bot, per_second=200, chats=ChatLimiters(per_chat_per_second=100), request_timeout=timeout, breaker=Breaker()
        )
        outbox = Outbox(sessions, messenger, clock)
        try:
            while (counts := await tally(sessions)).pending:
                await outbox.deliver()
                await asyncio.sleep(0.5)
        finally:
            await bot.session.close()
            await engine.dispose()
        stats = await api.stats()
    shown = stats["sent"]
    return {
        "request_timeout_s": timeout,
        "sends": len(rows),
        "ambiguous_sends": counts.ambiguous_sends,
        "shown_twice": shown - len(rows),
    }


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks faults")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--outage", type=float, default=25.0, help="seconds the Bot API fails every send")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"bench": "faults", "outage_s": args.outage, "follow_ups": args.count}
    with tempfile.TemporaryDirectory() as folder:
        for breaker in (True, False):
            print(f"outage of {args.outage:g} s, breaker {'on' if breaker else 'off'}", file=sys.stderr)
            result["with_breaker" if breaker else "without_breaker"] = await outage(
                Path(folder), args.count, args.outage, breaker
            )
        for timeout in (15.0, 1.0):
            print(f"slow answers, request time-out {timeout:g} s", file=sys.stderr)
            result[f"ambiguous_timeout_{timeout:g}s"] = await ambiguous(Path(folder), timeout)
    return result
