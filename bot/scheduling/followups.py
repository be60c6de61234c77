"""The follow-up dispatcher: an interval job that claims due rows, sends them, records the result.

Claiming takes a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer
lock on SQLite), so several instances share one table and each follow-up is sent
once. A process that dies after claiming leaves a lease that expires; the row is
claimed again. The only duplicate possible is a send that happened but was not
recorded, and that is counted (`FollowUpDispatcher.duplicates`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, Update, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.delivery.port import Messenger, Rejected, TryLater, Unconfirmed, Unreachable
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy, reminder_at
from bot.i18n import Translator
from bot.services.followups import CALL_ON_OPT_OUT, escalation, invitation
from bot.storage.group_commit import GroupCommit
from bot.storage.models import Conversation, FollowUp, Merchant, OutboxMessage, Terminal

log = logging.getLogger("posbot.dispatcher")

# Sends are recorded in shared commits at most this often (seconds): at 200 sends a second, ten a commit.
# A commit a send cost more CPU than the send; the price is a send that waits this much longer to be recorded.
RECORD_SPACING = 0.05

# Enough of Telegram's description for staff to see why ("chat not found", "message is too long").
REASON_LENGTH = 100


def telegram_reason(description: str) -> str:
    """Telegram's short description of a refusal, without the status prefix every one of them has."""
    short = description.removeprefix("Bad Request:").strip() or description.strip()
    return short[:REASON_LENGTH]


@dataclass
class TickReport:
    sent: int = 0
    reminded: int = 0
    escalated: int = 0
    retried: int = 0


@dataclass(slots=True)
class Claimed:
    """A follow-up this dispatcher holds the lease on, with what sending it needs.

    Read as columns, not entities: loading two ORM objects a row cost more than sending it.
    """

    id: int
    kind: str
    form_key: str
    lease_owner: str
    lease_until: datetime
    merchant_id: int
    merchant_name: str
    telegram_user_id: int | None
    routine_opt_out: bool
    locale: str
    serial: str | None

    def invitation(self, t: Translator, reminder: bool) -> dict[str, Any]:
        # The message reads only the follow-up's id, kind and form and the merchant's name.
        followup = FollowUp(id=self.id, kind=self.kind, form_key=self.form_key)
        return invitation(t, followup, Merchant(id=self.merchant_id, name=self.merchant_name), self.serial, reminder)


@dataclass
class DispatcherStats:
    sent: int = 0
    duplicates: int = 0
    ambiguous: int = 0  # sends whose outcome was unknown: the survey may show twice


class FollowUpDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        messenger: Messenger,
        clock: Clock,
        policy: FollowUpPolicy,
        calendar: WorkCalendar,
        *,
        staff_chat_id: int | None,
        default_locale: str = "zh_CN",
        zone: ZoneInfo | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 100,
        concurrency: int = 32,
    ) -> None:
        self.sessions = sessions
        self.messenger = messenger
        self.clock = clock
        self.policy = policy
        self.calendar = calendar
        self.staff_chat_id = staff_chat_id
        self.default_locale = default_locale
        self.staff_t = Translator(default_locale)
        self.zone = zone or ZoneInfo("Asia/Shanghai")
        self.lease = lease
        self.batch = batch
        self.concurrency_limit = concurrency
        self.owner = uuid.uuid4().hex[:16]
        self._claims = itertools.count(1)
        # Rows this instance claimed and has not finished with: never claimed again by it, even once their
        # lease has run out, so a send still being recorded is not made a second time.
        self._holding: set[int] = set()
        self.stats = DispatcherStats()
        self.records = GroupCommit(sessions, spacing=RECORD_SPACING)
        self._translators: dict[str, Translator] = {}

    # ---- the job -------------------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """One pass: send what is due, remind the silent, escalate the overdue."""
        report = TickReport()
        for reminder in (False, True):
            results = await self._drain(reminder)
            if reminder:
                report.reminded += results.count("sent")
            else:
                report.sent += results.count("sent")
            report.retried += results.count("retry")
            report.escalated += results.count("escalated")
        report.escalated += await self.escalate_overdue()
        return report

    async def _drain(self, reminder: bool) -> list[str]:
        """Claim the next batch while the last one is still being sent, so the sender never idles."""
        queue: asyncio.Queue[Claimed | None] = asyncio.Queue(maxsize=self.batch * 2)
        results: list[str] = []
        workers = self.concurrency_limit

        async def claimer() -> None:
            while True:
                claimed = await self.claim(self.batch, reminders=reminder)
                for item in claimed:
                    await queue.put(item)
                if len(claimed) < self.batch:
                    break
            for _ in range(workers):
                await queue.put(None)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                results.append(await self._guarded(item, reminder))

        await asyncio.gather(claimer(), *(worker() for _ in range(workers)))
        return results

    async def claim(self, limit: int, reminders: bool = False) -> list[Claimed]:
        """Lease up to `limit` due follow-ups and return exactly the ones this call took.

        Choosing and leasing is one UPDATE with the lease condition in its WHERE (run under
        SQLite's write lock; on PostgreSQL, rows another claim locked are skipped and the
        condition is re-checked on each row's newest version), and each claim marks its rows
        with its own token: two dispatchers, or two claims of one, never take the same row.
        """
        now = self.clock.now()
        lease_free = or_(FollowUp.lease_until.is_(None), FollowUp.lease_until < now)
        if reminders:
            waiting = and_(FollowUp.status == "sent", FollowUp.remind_at <= now, FollowUp.window_end > now)
            order = FollowUp.remind_at
        else:
            waiting = and_(FollowUp.status == "scheduled", FollowUp.send_at <= now)
            order = FollowUp.send_at
        token, until = f"{self.owner}:{next(self._claims)}", now + self.lease
        async with self.sessions() as session, session.begin():
            chosen = select(FollowUp.id).where(waiting, lease_free, FollowUp.id.not_in(self._holding))
            chosen = chosen.order_by(order).limit(limit)
            if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
                chosen = chosen.with_for_update(skip_locked=True)
            await session.execute(
                update(FollowUp)
                .where(FollowUp.id.in_(chosen), waiting, lease_free)
                .values(lease_until=until, lease_owner=token, attempts=FollowUp.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            # Read back by token: only the rows this claim took, however the UPDATE raced.
            rows = await session.execute(
                select(
                    FollowUp.id,
                    FollowUp.kind,
                    FollowUp.form_key,
                    Merchant.id,
                    Merchant.name,
                    Merchant.telegram_user_id,
                    Merchant.routine_opt_out,
                    Conversation.locale,
                    Merchant.locale,
                    Terminal.serial,
                )
                .join(Merchant, Merchant.id == FollowUp.merchant_id)
                .outerjoin(Conversation, Conversation.telegram_user_id == Merchant.telegram_user_id)
                .outerjoin(Terminal, Terminal.id == FollowUp.terminal_id)
                .where(waiting, FollowUp.lease_owner == token)
                .order_by(order)
            )
            # The language the merchant talks to the bot in, else the merchant's own, else the bot's.
            default = self.default_locale
            claimed = [
                Claimed(f_id, kind, form, token, until, m_id, name, user, opted_out, talks or usual or default, serial)
                for f_id, kind, form, m_id, name, user, opted_out, talks, usual, serial in rows.all()
            ]
        self._holding.update(c.id for c in claimed)
        return claimed

    async def _guarded(self, claimed: Claimed, reminder: bool) -> str:
        try:
            return await self._send(claimed, reminder)
        except Exception:
            log.exception("follow-up %s could not be dispatched", claimed.id)
            return "error"
        finally:
            self._holding.discard(claimed.id)

    async def _send(self, claimed: Claimed, reminder: bool) -> str:
        if claimed.lease_until < self.clock.now():
            # It waited in the queue past its lease: a later claim (ours or another instance's)
            # may hold it now and send it, so sending this copy would make a duplicate.
            return "expired"
        if not reminder and claimed.routine_opt_out and claimed.kind not in ("repair", "complaint"):
            if claimed.kind in CALL_ON_OPT_OUT:
                # Mandated by the policy (001 §5): a merchant who stopped the surveys is phoned instead.
                return await self._escalate(claimed.id, "opted_out", owner=claimed.lease_owner)
            await self._finish(claimed, status="cancelled", outcome="opted_out")
            return "cancelled"
        if claimed.telegram_user_id is None:
            return await self._escalate(claimed.id, "not_linked", owner=claimed.lease_owner)
        payload = claimed.invitation(self._translator(claimed.locale), reminder)
        try:
            message_id = await self.messenger.send(claimed.telegram_user_id, payload)
        except Unreachable:
            await self._mark_unreachable(claimed.merchant_id)
            return await self._escalate(claimed.id, "unreachable", owner=claimed.lease_owner)
        except Rejected as exc:
            # The merchant is linked; Telegram refused this message. Staff hear what Telegram said.
            log.warning("follow-up %s rejected: %s", claimed.id, exc)
            return await self._escalate(
                claimed.id, "rejected", owner=claimed.lease_owner, detail=telegram_reason(str(exc))
            )
        except TryLater as exc:
            if isinstance(exc, Unconfirmed):
                self.stats.ambiguous += 1
                log.warning("follow-up %s: %s; it will be sent again and may show twice", claimed.id, exc)
            await self._release(claimed, exc.retry_after)
            return "retry"
        now = self.clock.now()
        if reminder:
            recorded = await self._finish(claimed, status="reminded", reminded_at=now)
        else:
            recorded = await self._finish(
                claimed,
                status="sent",
                message_id=message_id,
                sent_at=now,
                remind_at=reminder_at(self.policy, self.calendar, now),
            )
        self.stats.sent += 1
        if not recorded:
            # Our lease ran out mid-send and another dispatcher owns the row now.
            self.stats.duplicates += 1
            log.warning("follow-up %s was sent after its lease expired", claimed.id)
        return "sent"

    def _translator(self, locale: str) -> Translator:
        translator = self._translators.get(locale)
        if translator is None:
            translator = self._translators[locale] = Translator(locale, self.default_locale)
        return translator

    async def _finish(self, claimed: Claimed, **values: Any) -> bool:
        """Record the result, but only while we still hold the lease (committed with the other senders')."""
        params = {f"v_{name}": value for name, value in values.items()}
        statement = _finish_statement(tuple(sorted(values)))
        params.update(f_id=claimed.id, f_owner=claimed.lease_owner)
        return bool(await self.records.execute(statement, params))

    async def _release(self, claimed: Claimed, retry_after: float) -> None:
        # Keep the lease a little longer instead of clearing it: that is the back-off.
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(FollowUp)
                .where(FollowUp.id == claimed.id, FollowUp.lease_owner == claimed.lease_owner)
                .values(lease_until=self.clock.now() + timedelta(seconds=max(retry_after, 1.0)))
            )

    async def _mark_unreachable(self, merchant_id: int) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(Merchant).where(Merchant.id == merchant_id).values(unreachable=True))

    async def _escalate(
        self, followup_id: int, reason: str, owner: str | None = None, detail: str | None = None
    ) -> str:
        """Hand the follow-up to a person: the staff group gets a call task with buttons.

        `owner` is the claim that holds the row's lease, when a send led here; otherwise only a
        row nobody holds is escalated.
        """
        now = self.clock.now()
        held = or_(FollowUp.lease_until.is_(None), FollowUp.lease_until < now)
        if owner is not None:
            held = or_(FollowUp.lease_owner == owner, held)
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(FollowUp)
                .where(FollowUp.id == followup_id, FollowUp.status.in_(("scheduled", "sent", "reminded")), held)
                .values(status="escalated", escalated_at=now, escalation_reason=reason, lease_until=None)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return "skipped"
            await self._queue_escalation(session, followup_id, detail)
        return "escalated"

    async def _queue_escalation(self, session: AsyncSession, followup_id: int, detail: str | None = None) -> None:
        if self.staff_chat_id is None:
            log.warning("follow-up %s escalated but STAFF_CHAT_ID is not set", followup_id)
            return
        row = (
            await session.execute(
                select(FollowUp, Merchant, Terminal.serial)
                .join(Merchant, Merchant.id == FollowUp.merchant_id)
                .outerjoin(Terminal, Terminal.id == FollowUp.terminal_id)
                .where(FollowUp.id == followup_id)
            )
        ).one()
        followup, merchant, serial = row
        session.add(
            OutboxMessage(
                chat_id=self.staff_chat_id,
                payload=escalation(self.staff_t, followup, merchant, serial, self.zone, detail=detail),
                purpose="escalation",
                followup_id=followup.id,
                status="pending",
                attempts=0,
                created_at=self.clock.now(),
            )
        )

    async def on_unreachable(self, message: OutboxMessage) -> None:
        """A reply or reminder bounced with 403: the merchant is marked, their follow-ups go to staff."""
        async with self.sessions() as session:
            merchant_id = (
                await session.execute(select(Merchant.id).where(Merchant.telegram_user_id == message.chat_id))
            ).scalar_one_or_none()
            if merchant_id is None:
                return
            open_ids = list(
                (
                    await session.execute(
                        select(FollowUp.id).where(
                            FollowUp.merchant_id == merchant_id, FollowUp.status.in_(("sent", "reminded"))
                        )
                    )
                ).scalars()
            )
        await self._mark_unreachable(merchant_id)
        for followup_id in open_ids:
            await self._escalate(followup_id, "unreachable")

    async def escalate_overdue(self) -> int:
        """Still no answer when the window closes: a person calls."""
        now = self.clock.now()
        async with self.sessions() as session:
            ids = list(
                (
                    await session.execute(
                        select(FollowUp.id).where(
                            FollowUp.status.in_(("sent", "reminded")),
                            FollowUp.window_end <= now,
                            or_(FollowUp.lease_until.is_(None), FollowUp.lease_until < now),
                        )
                    )
                ).scalars()
            )
        escalated = 0
        for followup_id in ids:
            escalated += (await self._escalate(followup_id, "no_answer")) == "escalated"
        return escalated


@cache
def _finish_statement(columns: tuple[str, ...]) -> Update:
    """Recording a result, built once per set of columns: building statements cost more than running them."""
    table = cast(Table, FollowUp.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("f_id"), table.c.lease_owner == bindparam("f_owner"))
        .values(lease_until=None, **{name: bindparam(f"v_{name}") for name in columns})
    )
