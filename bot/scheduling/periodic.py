"""Periodic planning: the monthly routine sample and the quarterly key-account review.

Each period's rows carry the period in their source key, so running the job twice,
or on every instance, plans each merchant once. The scheduler's cron jobs live in
memory: a process that is down at the planning moment catches up when it starts
(`catch_up`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy, PlannedFollowUp, routine_sample
from bot.services.followups import CallTasks, followup_row, periodic_plan, recompute_estimated, taken_sources
from bot.storage.models import FollowUp, Merchant

log = logging.getLogger("posbot.periodic")

# The cron jobs in bot/app.py run at this hour, merchant time, on the period's first day.
PLANNING_HOUR = 8

Planner = Callable[[async_sessionmaker[AsyncSession], FollowUpPolicy, WorkCalendar, Clock], Awaitable[int]]


def month_period(local: datetime) -> str:
    return f"{local.year}-{local.month:02d}"


def quarter_period(local: datetime) -> str:
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


async def _active_merchants(session: AsyncSession) -> list[int]:
    """Merchants the chat reaches and who have not stopped the surveys."""
    query = select(Merchant.id).where(
        Merchant.telegram_user_id.is_not(None),
        Merchant.routine_opt_out.is_(False),
        Merchant.unreachable.is_(False),
    )
    return list((await session.execute(query.order_by(Merchant.id))).scalars())


PLANNING_CHUNK = 1000


async def _plan_period(
    session: AsyncSession, plan: PlannedFollowUp, *, merchant_ids: list[int], period: str, now: datetime
) -> int:
    """Plan one survey per merchant for the period; merchants who already have theirs are left alone.

    A chunk at a time, written and let go: a month's sample of a million merchants is 100,000 rows, which
    neither one `IN (...)` (SQLite takes 32,766 values) nor the session's memory should hold at once.
    """
    planned = 0
    for start in range(0, len(merchant_ids), PLANNING_CHUNK):
        keys = {m: f"{plan.kind}:{period}:{m}" for m in merchant_ids[start : start + PLANNING_CHUNK]}
        taken = await taken_sources(session, keys.values())
        rows = [followup_row(plan, key, m, plan.kind, now, now) for m, key in keys.items() if key not in taken]
        session.add_all(rows)
        await session.flush()
        for row in rows:
            session.expunge(row)
        planned += len(rows)
    return planned


async def plan_routine(
    sessions: async_sessionmaker[AsyncSession], policy: FollowUpPolicy, calendar: WorkCalendar, clock: Clock
) -> int:
    """This month's random sample of active merchants, reproducible from the policy's seed."""
    now = clock.now()
    local = now.astimezone(calendar.zone)
    async with sessions() as session, session.begin():
        active = await _active_merchants(session)
        chosen = routine_sample(active, (local.year, local.month), policy.routine.sample_fraction, policy.routine.seed)
        planned = await _plan_period(
            session,
            periodic_plan(policy, calendar, "routine", now),
            merchant_ids=chosen,
            period=month_period(local),
            now=now,
        )
    log.info("routine survey: %s of %s active merchants sampled, %s newly planned", len(chosen), len(active), planned)
    return planned


async def plan_key_accounts(
    sessions: async_sessionmaker[AsyncSession],
    policy: FollowUpPolicy,
    calendar: WorkCalendar,
    clock: Clock,
    *,
    calls: CallTasks | None = None,
) -> int:
    """This quarter's review of every key account (001 §5: mandated, whatever the chat says).

    Accounts the chat cannot reach (never linked, blocked the bot, stopped the surveys) are
    phoned instead: with `calls`, their review is a call task from the day it would have been
    sent. Without it (tools, tests) they are planned like the others, and the dispatcher
    escalates the unlinked and the unreachable when it comes to send them.
    """
    now = clock.now()
    local = now.astimezone(calendar.zone)
    plan = periodic_plan(policy, calendar, "key_account", now)
    async with sessions() as session, session.begin():
        accounts = list(
            (
                await session.execute(select(Merchant).where(Merchant.key_account.is_(True)).order_by(Merchant.id))
            ).scalars()
        )
        keys = {m.id: f"key_account:{quarter_period(local)}:{m.id}" for m in accounts}
        taken = await taken_sources(session, keys.values())
        planned = called = 0
        for merchant in accounts:
            if keys[merchant.id] in taken:
                continue
            row = followup_row(plan, keys[merchant.id], merchant.id, plan.kind, now, now)
            session.add(row)
            planned += 1
            reason = _out_of_chat(merchant)
            if reason is not None and calls is not None:
                await calls.post(session, row, reason, now)
                called += 1
    log.info("key-account review: %s newly planned, %s of them as call tasks", planned, called)
    return planned


def _out_of_chat(merchant: Merchant) -> str | None:
    """Why the chat will not carry this merchant's review, if it will not."""
    if merchant.telegram_user_id is None:
        return "not_linked"
    if merchant.unreachable:
        return "unreachable"
    if merchant.routine_opt_out:
        return "opted_out"
    return None


async def _period_planned(session: AsyncSession, kind: str, period: str) -> bool:
    """Whether the job planned anything for the period. Installations plan next quarter's review
    under the same key prefix, so only rows the job wrote (event == kind) count."""
    found = await session.execute(
        select(FollowUp.id).where(FollowUp.event == kind, FollowUp.source_key.like(f"{kind}:{period}:%")).limit(1)
    )
    return found.first() is not None


async def catch_up(
    sessions: async_sessionmaker[AsyncSession],
    policy: FollowUpPolicy,
    calendar: WorkCalendar,
    clock: Clock,
    *,
    calls: CallTasks | None = None,
) -> int:
    """At start-up: plan this month's sample and this quarter's review if their moment has passed unplanned.

    The cron jobs only fire while the process runs; one down at 08:00 on the 1st would skip the
    whole period. Planning is idempotent, and a period with rows is left alone, so restarts never
    draw a second sample. Returns how many follow-ups were planned; never raises.
    """
    local = clock.now().astimezone(calendar.zone)
    quarter_month = 3 * ((local.month - 1) // 3) + 1
    periods: list[tuple[str, str, datetime, Planner]] = [
        ("routine", month_period(local), local.replace(day=1), plan_routine),
        (
            "key_account",
            quarter_period(local),
            local.replace(month=quarter_month, day=1),
            partial(plan_key_accounts, calls=calls),
        ),
    ]
    planned = 0
    for kind, period, first_day, plan in periods:
        moment = first_day.replace(hour=PLANNING_HOUR, minute=0, second=0, microsecond=0)
        if local < moment:
            continue  # the cron job will run today
        try:
            async with sessions() as session:
                if await _period_planned(session, kind, period):
                    continue
            log.info("%s for %s was not planned at %s: planning it now", kind, period, moment.isoformat())
            planned += await plan(sessions, policy, calendar, clock)
        except Exception:
            log.exception("catching up on %s for %s failed; the next start-up tries again", kind, period)
    return planned


async def recompute_estimated_followups(session: AsyncSession, policy: FollowUpPolicy, calendar: WorkCalendar) -> int:
    changed = await recompute_estimated(session, policy, calendar)
    if changed:
        log.info("%s follow-ups planned on the fallback calendar now have real dates", changed)
    return changed
