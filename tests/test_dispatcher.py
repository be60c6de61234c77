"""The follow-up dispatcher under pressure: two instances, a hard kill, and a misbehaving Bot API."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.telegram import TelegramMessenger
from bot.clock import FrozenClock, SystemClock
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import load_policy
from bot.scheduling.followups import FollowUpDispatcher
from bot.storage.db import create_engine, session_factory
from bot.storage.models import FollowUp
from bot.telegram_app import make_bot
from tests.conftest import RecordingMessenger
from tests.fakes import FakeBotAPI, seed_due_followups
from tests.telegram_harness import TOKEN, kill_hard, spawn_bot, stop, telegram_settings

FIRST = 20_000_000
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
POLICY = load_policy()


# A generous bound for a loaded machine; it only decides how long a broken run takes to fail.
SENDING_TIMEOUT = 180.0


def per_chat(api: FakeBotAPI) -> Counter[int]:
    return Counter(m.chat_id for m in api.sent() if m.chat_id >= FIRST)


async def statuses(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(select(FollowUp.status, func.count()).group_by(FollowUp.status))
            return {status: int(n) for status, n in rows.all()}
    finally:
        await engine.dispose()


async def all_sent(url: str, count: int) -> bool:
    return (await statuses(url)).get("sent") == count


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:  # noqa: ASYNC109
    """Until condition() holds, asked again shortly after each no: for state the fake server does not see."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # noqa: ASYNC110 - a database has nothing to wait on
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


def dispatcher_for(api: FakeBotAPI, url: str, clock: Any, **options: Any) -> tuple[FollowUpDispatcher, Any, Any]:
    bot = make_bot(telegram_settings(url, api))
    messenger = TelegramMessenger(
        bot, per_second=options.pop("per_second", 2000), request_timeout=options.pop("timeout", 15)
    )
    dispatcher, engine = local_dispatcher(url, messenger, clock, **options)
    return dispatcher, bot, engine


class SlowMessenger(RecordingMessenger):
    """Each send takes half a second on the dispatcher's clock, so claimed rows outlive their lease in the queue."""

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__()
        self.clock = clock

    async def send(self, chat_id: int, payload: dict[str, Any]) -> int | None:
        self.clock.advance(timedelta(seconds=0.5))
        return await super().send(chat_id, payload)


def local_dispatcher(url: str, messenger: Any, clock: FrozenClock, **options: Any) -> tuple[FollowUpDispatcher, Any]:
    engine = create_engine(url)
    dispatcher = FollowUpDispatcher(
        session_factory(engine),
        messenger,
        clock,
        POLICY,
        WorkCalendar.from_policy(POLICY),
        staff_chat_id=None,
        **options,
    )
    return dispatcher, engine


async def test_a_dispatcher_slower_than_its_lease_sends_each_follow_up_once(sqlite_url: str) -> None:
    """Rows still queued when their lease runs out must not be claimed, and sent, a second time."""
    count = 40
    await seed_due_followups(sqlite_url, count, FIRST, NOW)
    clock = FrozenClock(NOW)
    messenger = SlowMessenger(clock=clock)
    dispatcher, engine = local_dispatcher(
        sqlite_url, messenger, clock, lease=timedelta(seconds=3), batch=10, concurrency=2
    )
    try:
        for _ in range(10):
            report = await dispatcher.tick()
            if report.sent == 0 and report.retried == 0:
                break
    finally:
        await engine.dispose()
    delivered = Counter(chat for chat, _ in messenger.sent)
    assert len(delivered) == count
    assert set(delivered.values()) == {1}
    assert dispatcher.stats.duplicates == 0
    assert await statuses(sqlite_url) == {"sent": count}


async def test_two_dispatchers_on_one_sqlite_file_send_each_follow_up_once(sqlite_url: str) -> None:
    count = 120
    await seed_due_followups(sqlite_url, count, FIRST, NOW)
    clock = FrozenClock(NOW)
    messenger = RecordingMessenger()
    first, engine1 = local_dispatcher(sqlite_url, messenger, clock)
    second, engine2 = local_dispatcher(sqlite_url, messenger, clock)
    try:
        reports = await asyncio.gather(first.tick(), second.tick())
    finally:
        await engine1.dispose()
        await engine2.dispose()
    delivered = Counter(chat for chat, _ in messenger.sent)
    assert len(delivered) == count
    assert set(delivered.values()) == {1}
    assert reports[0].sent + reports[1].sent == count
    assert await statuses(sqlite_url) == {"sent": count}


@pytest.mark.slow
@pytest.mark.postgres
async def test_two_dispatchers_on_one_postgresql_database_send_each_follow_up_once(pg_url: str) -> None:
    count = 2000
    await seed_due_followups(pg_url, count, FIRST, NOW)
    async with FakeBotAPI(token=TOKEN) as api:
        for i in range(count):
            api.add_user(FIRST + i, first_name=f"shop{i}")
        clock = FrozenClock(NOW)
        first, bot1, engine1 = dispatcher_for(api, pg_url, clock)
        second, bot2, engine2 = dispatcher_for(api, pg_url, clock)
        try:
            reports = await asyncio.gather(first.tick(), second.tick())
        finally:
            for bot, engine in ((bot1, engine1), (bot2, engine2)):
                await bot.session.close()
                await engine.dispose()
        delivered = per_chat(api)
    assert len(delivered) == count
    assert set(delivered.values()) == {1}
    assert reports[0].sent + reports[1].sent == count
    assert min(reports[0].sent, reports[1].sent) > 0, "both instances should have shared the work"
    assert first.stats.duplicates + second.stats.duplicates == 0
    assert await statuses(pg_url) == {"sent": count}


async def test_faults_429_5xx_and_timeouts_still_deliver_every_follow_up_once(sqlite_url: str) -> None:
    count = 60
    await seed_due_followups(sqlite_url, count, FIRST, NOW)
    async with FakeBotAPI(token=TOKEN) as api:
        for i in range(count):
            api.add_user(FIRST + i, first_name=f"shop{i}")
        api.fail_next("sendMessage", status=429, count=6, retry_after=1)
        api.fail_next("sendMessage", status=502, count=4)
        api.fail_next("sendMessage", status=500, count=3)
        # Held far longer than the client waits (5 s), so only a request held on purpose ever times out.
        api.delay_next("sendMessage", seconds=120, count=3)
        clock = FrozenClock(NOW)
        dispatcher, bot, engine = dispatcher_for(api, sqlite_url, clock, timeout=5)
        try:
            # A timed-out send may have gone out: it waits before it is tried again, as do the sends the
            # breaker held back while the server failed (seven 5xx in a row open it): tick after tick.
            for _ in range(40):
                await dispatcher.tick()
                if await statuses(sqlite_url) == {"sent": count}:
                    break
                clock.advance(timedelta(minutes=1))
                await asyncio.sleep(0.3)
        finally:
            await bot.session.close()
            await engine.dispose()
        # The client gave up the three held requests; the server drops each as its connection closes.
        await api.wait_for(lambda: api.dropped == 3, timeout=SENDING_TIMEOUT)
        delivered = per_chat(api)
        assert api.count_429 == 6 and api.count_5xx == 7
        assert dispatcher.stats.ambiguous == 3  # the three timed out: counted, each may have shown
    assert len(delivered) == count
    assert set(delivered.values()) == {1}
    assert await statuses(sqlite_url) == {"sent": count}


@pytest.mark.slow
async def test_a_dispatcher_killed_mid_run_delivers_everything_after_restart(sqlite_url: str, tmp_path: Path) -> None:
    """Any duplicate can only be a message sent but not recorded before the kill; it is counted."""
    count = 800
    await seed_due_followups(sqlite_url, count, FIRST, SystemClock().now())
    async with FakeBotAPI(token=TOKEN) as api:
        for i in range(count):
            api.add_user(FIRST + i, first_name=f"shop{i}")
        settings = telegram_settings(
            sqlite_url, api, followup_tick_seconds=0.3, followup_lease_seconds=3, telegram_rate_per_second=250
        )
        log = tmp_path / "bot.log"
        process = await spawn_bot(api, settings, log)
        try:
            await api.wait_for(lambda: len(per_chat(api)) >= 250, timeout=SENDING_TIMEOUT)
            await kill_hard(process)
            at_kill = len(per_chat(api))
            assert at_kill < count, "the kill came too late to test anything"
            process = await spawn_bot(api, settings, log)
            await api.wait_for(lambda: len(per_chat(api)) >= count, timeout=SENDING_TIMEOUT)
            # Every row recorded as sent: nothing is in flight any more, so the count below is final.
            await until(lambda: all_sent(sqlite_url, count), timeout=SENDING_TIMEOUT, what=f"{count} rows sent")
        finally:
            await stop(process)
        delivered = per_chat(api)
    duplicates = sum(n - 1 for n in delivered.values())
    print(f"killed after {at_kill} of {count}; duplicates after restart: {duplicates}")
    assert len(delivered) == count
    # Only sends in flight at the kill can repeat: one per worker (the dispatcher runs 32).
    assert duplicates <= 32
    assert (await statuses(sqlite_url)).get("sent") == count, log.read_text()[-3000:]
