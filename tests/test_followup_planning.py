"""Planning follow-ups in SQL: idempotent per source, the monthly sample, and fallback dates made real."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from bot.app import Core
from bot.domain.calendar import WorkCalendar
from bot.scheduling.periodic import plan_key_accounts, plan_routine
from bot.services.followups import plan_followups, recompute_estimated
from bot.services.merchants import add_merchant
from bot.storage.models import FollowUp
from tests.conftest import SHANGHAI, holidays_known_until


async def merchants(core: Core, count: int, key_every: int = 0) -> list[int]:
    ids = []
    async with core.sessions() as session, session.begin():
        for i in range(count):
            merchant = await add_merchant(
                session,
                name=f"shop {i}",
                phone=None,
                now=core.clock.now(),
                key_account=bool(key_every and i % key_every == 0),
            )
            merchant.telegram_user_id = 8_000_000 + i
            merchant.routine_opt_out = i == 1  # one merchant said Stop
            ids.append(merchant.id)
    return ids


async def planned(core: Core) -> list[FollowUp]:
    async with core.sessions() as session:
        return list((await session.execute(select(FollowUp).order_by(FollowUp.id))).scalars())


async def test_the_monthly_sample_is_planned_once_and_skips_merchants_who_opted_out(core: Core) -> None:
    ids = await merchants(core, 40)
    first = await plan_routine(core.sessions, core.policy, core.calendar, core.clock)
    again = await plan_routine(core.sessions, core.policy, core.calendar, core.clock)
    rows = await planned(core)
    assert first == 4 and again == 0  # a tenth of the 39 still opted in
    assert ids[1] not in {r.merchant_id for r in rows}
    assert all(r.kind == "routine" and r.form_key == "routine" for r in rows)
    assert rows[0].send_at == datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)  # now is inside working hours


async def test_key_accounts_get_one_review_a_quarter(core: Core) -> None:
    await merchants(core, 9, key_every=3)
    assert await plan_key_accounts(core.sessions, core.policy, core.calendar, core.clock) == 3
    assert await plan_key_accounts(core.sessions, core.policy, core.calendar, core.clock) == 0


async def test_the_same_event_source_never_plans_twice(core: Core) -> None:
    (merchant,) = await merchants(core, 1)
    at = datetime(2026, 11, 20, 15, 0, tzinfo=SHANGHAI)
    for expected in (2, 0):
        async with core.sessions() as session, session.begin():
            result = await plan_followups(
                session,
                core.policy,
                core.calendar,
                merchant_id=merchant,
                event="installation",
                at=at,
                source="install:AB123456:2026-11-20",
                now=core.clock.now(),
            )
        assert len(result.created) == expected


async def test_estimated_follow_ups_get_real_dates_once_the_holiday_data_exists(core: Core) -> None:
    (merchant,) = await merchants(core, 1)
    resolved = datetime(2026, 12, 31, 16, 0, tzinfo=SHANGHAI)
    without_2027 = WorkCalendar.from_policy(core.policy, source=holidays_known_until(2026))
    async with core.sessions() as session, session.begin():
        await plan_followups(
            session,
            core.policy,
            without_2027,
            merchant_id=merchant,
            event="repair-resolved",
            at=resolved,
            source="ticket:1:1",
            now=core.clock.now(),
        )
    (guess,) = await planned(core)
    assert guess.estimated and guess.send_at.astimezone(SHANGHAI).date() == date(2027, 1, 1)  # a Friday, on the guess

    def with_2027_data(day: date) -> bool:
        # What a chinesecalendar release with 2027 in it says: New Year's Day is a holiday.
        return day.weekday() < 5 and day != date(2027, 1, 1)

    informed = WorkCalendar.from_policy(core.policy, source=with_2027_data)
    async with core.sessions() as session, session.begin():
        assert await recompute_estimated(session, core.policy, informed) == 1
    (real,) = await planned(core)
    assert not real.estimated
    assert real.send_at == datetime(2027, 1, 4, 9, 0, tzinfo=SHANGHAI)


async def test_the_routine_window_follows_the_policy_file(core: Core) -> None:
    await merchants(core, 10)
    core.policy.routine.window_working_days = 2
    await plan_routine(core.sessions, core.policy, core.calendar, core.clock)
    (row,) = await planned(core)
    assert row.window_end == datetime(2026, 11, 26, 20, 0, tzinfo=SHANGHAI)  # Tuesday + 2 working days
