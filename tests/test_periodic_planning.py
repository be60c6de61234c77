"""The monthly routine sample and the quarterly key-account review across restarts and calendar gaps.

The holiday calendar is injected (`WorkCalendar(source=...)`): a source raising
NotImplementedError is a chinesecalendar release that has no data for that year yet.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from bot.app import Core, build_core
from bot.clock import FrozenClock
from bot.domain.calendar import WorkCalendar
from bot.scheduling.periodic import plan_key_accounts, plan_routine
from bot.services.followups import recompute_estimated
from bot.services.merchants import add_merchant
from bot.storage.models import FollowUp
from tests.conftest import SHANGHAI, RecordingMessenger, make_settings


def shanghai(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def no_data_for_any_year(day: date) -> bool:
    raise NotImplementedError(f"no holiday data for {day.year}")


def monday_to_friday_until_2027(day: date) -> bool:
    """Data up to 2026 only (every weekday a working day, to keep the sums plain)."""
    if day.year >= 2027:
        raise NotImplementedError(f"no holiday data for {day.year}")
    return day.weekday() < 5


def with_2027_data(day: date) -> bool:
    """What the next release says: New Year's Day 2027, a Friday, is a holiday."""
    return day.weekday() < 5 and day != date(2027, 1, 1)


async def merchants(core: Core, count: int, key_accounts: int = 0, first: int = 0) -> list[int]:
    """Active merchants linked to Telegram; the first `key_accounts` of them are key accounts."""
    ids = []
    async with core.sessions() as session, session.begin():
        for i in range(first, first + count):
            merchant = await add_merchant(
                session, name=f"shop {i}", phone=None, now=core.clock.now(), key_account=i < first + key_accounts
            )
            merchant.telegram_user_id = 9_000_000 + i
            ids.append(merchant.id)
    return ids


async def planned(core: Core) -> list[FollowUp]:
    async with core.sessions() as session:
        return list((await session.execute(select(FollowUp).order_by(FollowUp.id))).scalars())


async def restart(core: Core, clock: FrozenClock) -> Core:
    """Start-up again on the same database, as after a deployment."""
    return await build_core(make_settings(core.settings.database_url), RecordingMessenger(), clock)


# ---- periodic surveys planned on the fallback calendar ----------------------------------------------------


async def test_the_bot_starts_when_periodic_surveys_were_planned_without_holiday_data(
    core: Core, clock: FrozenClock
) -> None:
    clock.set(shanghai(2026, 9, 28, 10, 0))  # the Monday before National Day
    await merchants(core, 10, key_accounts=1)
    guessing = WorkCalendar.from_policy(core.policy, source=no_data_for_any_year)
    assert await plan_routine(core.sessions, core.policy, guessing, clock) == 1
    assert await plan_key_accounts(core.sessions, core.policy, guessing, clock) == 1
    rows = await planned(core)
    # Monday to Friday: Sep 29, Sep 30, Oct 1, Oct 2, Oct 5, right through the holiday.
    assert [(r.kind, r.estimated, r.window_end) for r in rows] == [
        ("routine", True, shanghai(2026, 10, 5, 20, 0)),
        ("key_account", True, shanghai(2026, 10, 5, 20, 0)),
    ]

    restarted = await restart(core, clock)  # with the installed calendar, which knows 2026
    await restarted.close()

    rows = await planned(core)
    # National Day 2026 runs Oct 1-7; Saturday Oct 10 is a make-up working day (State Council notice).
    assert [(r.kind, r.estimated, r.send_at, r.window_end) for r in rows] == [
        ("routine", False, shanghai(2026, 9, 28, 10, 0), shanghai(2026, 10, 10, 20, 0)),
        ("key_account", False, shanghai(2026, 9, 28, 10, 0), shanghai(2026, 10, 10, 20, 0)),
    ]


async def test_periodic_surveys_get_the_planning_window_once_the_year_has_data(core: Core, clock: FrozenClock) -> None:
    clock.set(shanghai(2026, 12, 28, 10, 0))  # Monday: the five-working-day window runs into 2027
    await merchants(core, 10, key_accounts=1)
    guessing = WorkCalendar.from_policy(core.policy, source=monday_to_friday_until_2027)
    await plan_routine(core.sessions, core.policy, guessing, clock)
    await plan_key_accounts(core.sessions, core.policy, guessing, clock)
    assert [(r.estimated, r.window_end) for r in await planned(core)] == [(True, shanghai(2027, 1, 4, 20, 0))] * 2

    informed = WorkCalendar.from_policy(core.policy, source=with_2027_data)
    async with core.sessions() as session, session.begin():
        assert await recompute_estimated(session, core.policy, informed) == 2
    async with core.sessions() as session, session.begin():
        assert await recompute_estimated(session, core.policy, informed) == 0

    # Dec 29, 30, 31, then Jan 4 and 5: New Year's Day is not counted.
    assert [(r.kind, r.estimated, r.send_at, r.window_end) for r in await planned(core)] == [
        ("routine", False, shanghai(2026, 12, 28, 10, 0), shanghai(2027, 1, 5, 20, 0)),
        ("key_account", False, shanghai(2026, 12, 28, 10, 0), shanghai(2027, 1, 5, 20, 0)),
    ]


async def test_a_follow_up_that_cannot_be_replanned_does_not_stop_start_up(core: Core, clock: FrozenClock) -> None:
    (merchant,) = await merchants(core, 1)
    async with core.sessions() as session, session.begin():
        session.add(
            FollowUp(
                kind="install_first",
                form_key="install_first",
                merchant_id=merchant,
                source_key="legacy:1",
                status="scheduled",
                event="site-visit",  # an event this version does not plan for
                event_at=clock.now(),
                send_at=shanghai(2026, 11, 25, 9, 0),
                window_end=shanghai(2026, 11, 27, 20, 0),
                estimated=True,
                attempts=0,
                created_at=clock.now(),
            )
        )

    restarted = await restart(core, clock)
    await restarted.close()

    (row,) = [r for r in await planned(core) if r.source_key == "legacy:1"]
    assert (row.estimated, row.send_at, row.window_end) == (
        True,
        shanghai(2026, 11, 25, 9, 0),
        shanghai(2026, 11, 27, 20, 0),
    )


# ---- catching up on a period the bot was down for --------------------------------------------------------


def surveys(rows: list[FollowUp]) -> list[tuple[str, str]]:
    return [(r.kind, r.source_key.rsplit(":", 1)[0]) for r in rows]


async def test_start_up_plans_the_month_and_quarter_the_bot_was_down_for_once(core: Core, clock: FrozenClock) -> None:
    clock.set(shanghai(2026, 12, 3, 10, 0))  # down at 08:00 on December 1st (and on October 1st)
    await merchants(core, 30, key_accounts=2)

    restarted = await restart(core, clock)
    await restarted.close()
    first = await planned(core)
    again = await restart(core, clock)
    await again.close()

    assert surveys(first) == [("routine", "routine:2026-12")] * 3 + [("key_account", "key_account:2026Q4")] * 2
    assert all(r.send_at == shanghai(2026, 12, 3, 10, 0) and r.status == "scheduled" for r in first)
    assert [r.id for r in await planned(core)] == [r.id for r in first]  # the second start-up planned nothing


async def test_start_up_before_the_planning_hour_leaves_it_to_the_monthly_job(core: Core, clock: FrozenClock) -> None:
    clock.set(shanghai(2027, 1, 1, 7, 30))  # the job runs at 08:00, merchant time
    await merchants(core, 30, key_accounts=2)

    restarted = await restart(core, clock)
    await restarted.close()

    assert await planned(core) == []


async def test_a_month_already_planned_is_not_sampled_again_at_start_up(core: Core, clock: FrozenClock) -> None:
    clock.set(shanghai(2026, 12, 1, 8, 0))
    await merchants(core, 30)
    assert await plan_routine(core.sessions, core.policy, core.calendar, clock) == 3
    sample = await planned(core)
    clock.set(shanghai(2026, 12, 14, 9, 30))
    await merchants(core, 30, first=30)  # thirty more merchants since: another sample would pick others

    restarted = await restart(core, clock)
    await restarted.close()

    assert [r.id for r in await planned(core)] == [r.id for r in sample]
