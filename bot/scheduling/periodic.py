"""Periodic planning: the monthly routine sample and the quarterly key-account review.

Each period's rows carry the period in their source key, so running the job twice,
or on every instance, plans each merchant once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy, PlannedFollowUp, routine_sample
from bot.services.followups import followup_row, periodic_plan, recompute_estimated, taken_sources
from bot.storage.models import Merchant

log = logging.getLogger("posbot.periodic")


async def _active_merchants(session: AsyncSession, key_accounts_only: bool = False) -> list[int]:
    query = select(Merchant.id).where(
        Merchant.telegram_user_id.is_not(None),
        Merchant.routine_opt_out.is_(False),
        Merchant.unreachable.is_(False),
    )
    if key_accounts_only:
        query = query.where(Merchant.key_account.is_(True))
    return list((await session.execute(query.order_by(Merchant.id))).scalars())


async def _plan_period(
    session: AsyncSession, plan: PlannedFollowUp, *, merchant_ids: list[int], period: str, now: datetime
) -> int:
    """Plan one survey per merchant for the period; merchants who already have theirs are left alone."""
    keys = {m: f"{plan.kind}:{period}:{m}" for m in merchant_ids}
    taken = await taken_sources(session, keys.values())
    planned = 0
    for merchant_id, key in keys.items():
        if key not in taken:
            session.add(followup_row(plan, key, merchant_id, plan.kind, now, now))
            planned += 1
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
            period=f"{local.year}-{local.month:02d}",
            now=now,
        )
    log.info("routine survey: %s of %s active merchants sampled, %s newly planned", len(chosen), len(active), planned)
    return planned


async def plan_key_accounts(
    sessions: async_sessionmaker[AsyncSession], policy: FollowUpPolicy, calendar: WorkCalendar, clock: Clock
) -> int:
    now = clock.now()
    local = now.astimezone(calendar.zone)
    quarter = (local.month - 1) // 3 + 1
    async with sessions() as session, session.begin():
        accounts = await _active_merchants(session, key_accounts_only=True)
        planned = await _plan_period(
            session,
            periodic_plan(policy, calendar, "key_account", now),
            merchant_ids=accounts,
            period=f"{local.year}Q{quarter}",
            now=now,
        )
    log.info("key-account review: %s newly planned", planned)
    return planned


async def recompute_estimated_followups(session: AsyncSession, policy: FollowUpPolicy, calendar: WorkCalendar) -> int:
    changed = await recompute_estimated(session, policy, calendar)
    if changed:
        log.info("%s follow-ups planned on the fallback calendar now have real dates", changed)
    return changed
