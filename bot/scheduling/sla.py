"""The SLA watcher: an interval job that warns staff before a case's deadline and calls supervisors after it.

The deadlines are columns of the ticket (set when the case opened, in working time), so the
watcher keeps nothing of its own: each tick reads the open cases, works out on the working-day
calendar which warning points and deadlines have come, and says each once. Each thing said is
stamped on the ticket (`respond_warned_at`, `resolve_breached_at`, ...) by a conditional UPDATE in
the transaction that queues the message, so a restart, a second tick or a second instance never
says it again. Nights, weekends and holidays do not count: the deadlines are in working time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from bot.domain.calendar import WorkCalendar
from bot.domain.cases import LEGACY_STATES, OPEN_STATES
from bot.domain.desk_policy import DeskPolicy
from bot.domain.sla import add_working_minutes, working_minutes_between, working_start
from bot.services.cases import CaseDesk
from bot.services.render import local_minute, text_payload
from bot.services.updates import UpdateWork
from bot.storage.models import Ticket

log = logging.getLogger("posbot.sla")

Deadline = Literal["respond", "resolve"]
Event = Literal["warning", "breach"]
# Statuses the database may hold for an open case (legacy "open" is "new").
OPEN_STATUSES = sorted({*OPEN_STATES, *(old for old, state in LEGACY_STATES.items() if state in OPEN_STATES)})
STAMPS: dict[tuple[Deadline, Event], InstrumentedAttribute[datetime | None]] = {
    ("respond", "warning"): Ticket.respond_warned_at,
    ("respond", "breach"): Ticket.respond_breached_at,
    ("resolve", "warning"): Ticket.resolve_warned_at,
    ("resolve", "breach"): Ticket.resolve_breached_at,
}


def warning_at(desk: DeskPolicy, calendar: WorkCalendar, opened_at: datetime, deadline: datetime) -> datetime:
    """`desk.warn_at` of the working time from the opening to `deadline`, as a moment (as `deadlines` does)."""
    hours = desk.working_hours
    start = working_start(calendar, hours, opened_at)
    span = working_minutes_between(calendar, hours, start, deadline)
    return add_working_minutes(calendar, hours, start, int(span * desk.warn_at))


@dataclass(frozen=True)
class Due:
    """One thing the watcher has to say about one of a case's deadlines."""

    deadline: Deadline
    event: Event
    at: datetime  # the deadline itself


def due_now(desk: DeskPolicy, calendar: WorkCalendar, ticket: Ticket, now: datetime) -> list[Due]:
    """What has come and not been said: a passed deadline is a breach (its warning is then moot)."""
    found: list[Due] = []
    checks: list[tuple[Deadline, datetime | None, datetime | None, datetime | None]] = [
        ("resolve", ticket.sla_due_at, ticket.resolve_warned_at, ticket.resolve_breached_at)
    ]
    if ticket.first_response_at is None:  # a response given ends the response deadline
        checks.insert(0, ("respond", ticket.respond_due_at, ticket.respond_warned_at, ticket.respond_breached_at))
    for which, deadline, warned, breached in checks:
        if deadline is None or breached is not None:
            continue
        if now >= deadline:
            found.append(Due(which, "breach", deadline))
        elif warned is None and now >= warning_at(desk, calendar, ticket.created_at, deadline):
            found.append(Due(which, "warning", deadline))
    return found


@dataclass
class SlaReport:
    warned: int = 0
    breached: int = 0


class SlaWatcher:
    def __init__(self, cases: CaseDesk) -> None:
        self.cases = cases
        self.updates = cases.updates
        self.desk = cases.desk
        self.calendar = cases.calendar
        self.t = cases.t  # the staff group's language
        self.zone = cases.zone

    async def tick(self) -> SlaReport:
        """One pass over the open cases; one transaction per case that has something to say."""
        report = SlaReport()
        now = self.updates.clock.now()
        async with self.updates.sessions() as session:
            rows = await session.execute(
                select(Ticket).where(
                    Ticket.status.in_(OPEN_STATUSES),
                    or_(
                        and_(
                            Ticket.first_response_at.is_(None),
                            Ticket.respond_due_at.is_not(None),
                            Ticket.respond_breached_at.is_(None),
                        ),
                        and_(Ticket.sla_due_at.is_not(None), Ticket.resolve_breached_at.is_(None)),
                    ),
                )
            )
            pending = [ticket.id for ticket in rows.scalars() if due_now(self.desk, self.calendar, ticket, now)]
        for ticket_id in pending:

            async def work(done: UpdateWork, ticket_id: int = ticket_id) -> None:
                warned, breached = await self._check(done, ticket_id)
                report.warned += warned
                report.breached += breached

            try:
                await self.updates.run(None, work, label=f"sla ticket {ticket_id}")
            except Exception:  # one case's trouble must not keep the others' warnings back
                log.exception("SLA check of ticket %s failed", ticket_id)
        return report

    async def _check(self, done: UpdateWork, ticket_id: int) -> tuple[int, int]:
        ticket = await done.session.get(Ticket, ticket_id)
        if ticket is None or ticket.status not in OPEN_STATUSES:
            return 0, 0
        said: list[Due] = []
        for due in due_now(self.desk, self.calendar, ticket, done.now):
            if await self._stamp(done, ticket, due):
                said.append(due)
        warnings = [d for d in said if d.event == "warning"]
        breaches = [d for d in said if d.event == "breach"]
        if warnings:
            self._warn(done, ticket, warnings)
        if breaches:
            await self._breach(done, ticket, breaches)
        return len(warnings), len(breaches)

    async def _stamp(self, done: UpdateWork, ticket: Ticket, due: Due) -> bool:
        """Claim the right to say it: only the transaction whose UPDATE finds the stamp empty says it."""
        column = STAMPS[(due.deadline, due.event)]
        values: dict[str, Any] = {column.key: done.now}
        if due.event == "breach":
            warned = STAMPS[(due.deadline, "warning")]
            if getattr(ticket, warned.key) is None:
                values[warned.key] = done.now  # too late to warn: the breach says it all
        result = await done.session.execute(
            update(Ticket).where(Ticket.id == ticket.id, column.is_(None)).values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _warn(self, done: UpdateWork, ticket: Ticket, warnings: list[Due]) -> None:
        if self.cases.staff_chat_id is None:
            log.warning("no STAFF_CHAT_ID: SLA warning for %s not shown", ticket.number)
            return
        text = "\n".join(
            self.t(f"sla.warning.{d.deadline}", number=ticket.number, at=self._moment(d.at)) for d in warnings
        )
        done.say(self.cases.staff_chat_id, text_payload(text), purpose="sla_warning", ticket_id=ticket.id)

    async def _breach(self, done: UpdateWork, ticket: Ticket, breaches: list[Due]) -> None:
        """The case posted again, headed by what is overdue and the supervisors, mentioned so Telegram notifies them."""
        lines = [self.t(f"sla.breach.{d.deadline}", number=ticket.number, at=self._moment(d.at)) for d in breaches]
        await self.cases.escalate(done, ticket, lines)

    def _moment(self, at: datetime) -> str:
        return local_minute(at, self.zone)
