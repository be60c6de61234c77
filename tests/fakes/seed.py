"""Many merchants with a due follow-up each, for dispatcher tests and benchmarks."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from bot.scheduling.periodic import month_period
from bot.storage.db import create_engine, upgrade_async
from bot.storage.models import FollowUp, Merchant

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def seed_due_followups(url: str, count: int, first_user: int, now: datetime, zone: ZoneInfo = SHANGHAI) -> None:
    """`count` linked merchants (Telegram ids from `first_user`), each with one routine survey due.

    The surveys are keyed as this month's routine sample, so a bot started on the data sees the
    month planned and does not draw a sample of its own.
    """
    local = now.astimezone(zone)
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            merchants = [
                {
                    "name": f"shop {i}",
                    "invite_code": f"seed{first_user + i}",
                    "telegram_user_id": first_user + i,
                    "key_account": False,
                    "routine_opt_out": False,
                    "unreachable": False,
                    "created_at": now,
                }
                for i in range(count)
            ]
            await connection.execute(insert(Merchant), merchants)
            ids = (
                await connection.execute(select(Merchant.id).where(Merchant.telegram_user_id >= first_user))
            ).scalars()
            followups = [
                {
                    "kind": "routine",
                    "form_key": "routine",
                    "merchant_id": mid,
                    "source_key": f"routine:{month_period(local)}:{mid}",
                    "status": "scheduled",
                    "event": "routine",
                    "event_at": now,
                    "send_at": now - timedelta(minutes=1),
                    "window_end": now + timedelta(days=3),
                    "estimated": False,
                    "attempts": 0,
                    "created_at": now,
                }
                for mid in ids
            ]
            await connection.execute(insert(FollowUp), followups)
    finally:
        await engine.dispose()
