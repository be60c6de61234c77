"""SLA deadlines counted in staff working time on the working-day calendar.

A case promised "a response within 30 minutes" is promised 30 minutes of someone at the desk: nights,
weekends and Chinese holidays do not count, and a make-up working Saturday does (the calendar knows
which days are which). Pure: the opening time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.domain.calendar import WorkCalendar
from bot.domain.cases import canonical_severity
from bot.domain.desk_policy import DeskPolicy, WorkingHours


@dataclass(frozen=True)
class Deadlines:
    respond_by: datetime
    resolve_by: datetime
    warn_respond_at: datetime
    warn_resolve_at: datetime


def _next_working_day(calendar: WorkCalendar, day: date) -> date:
    workday, _ = calendar.first_workday_from(day)
    return workday


def working_start(calendar: WorkCalendar, hours: WorkingHours, moment: datetime) -> datetime:
    """`moment` when staff are at work then, else when they next start: SLA time counts from here."""
    local = moment.astimezone(calendar.zone)
    day = local.date() + timedelta(days=1 if local.time() >= hours.end else 0)
    workday = _next_working_day(calendar, day)
    if workday == local.date() and local.time() >= hours.start:
        return local
    return calendar.at(workday, hours.start)


def add_working_minutes(calendar: WorkCalendar, hours: WorkingHours, start: datetime, minutes: int) -> datetime:
    """The moment `minutes` of working time after `start`; a deadline at closing time stays that day."""
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    moment = working_start(calendar, hours, start)
    left = timedelta(minutes=minutes)
    while True:
        closing = calendar.at(moment.date(), hours.end)
        if moment + left <= closing:
            return moment + left
        left -= closing - moment
        moment = working_start(calendar, hours, closing)


def working_minutes_between(calendar: WorkCalendar, hours: WorkingHours, start: datetime, end: datetime) -> int:
    """Whole minutes of working time from `start` to `end` (0 when `end` is not later)."""
    total = timedelta()
    moment = working_start(calendar, hours, start)
    while moment < end:
        closing = calendar.at(moment.date(), hours.end)
        total += min(closing, end) - moment
        moment = working_start(calendar, hours, closing)
    return int(total.total_seconds() // 60)


def end_of_working_day(calendar: WorkCalendar, hours: WorkingHours, moment: datetime, days_after: int = 0) -> datetime:
    """Closing time of the working day `moment` counts in (the next one at night), or `days_after` later."""
    day = working_start(calendar, hours, moment).date()
    if days_after:
        day, _ = calendar.add_working_days(calendar.at(day, hours.start), days_after)
    return calendar.at(day, hours.end)


def deadlines(policy: DeskPolicy, calendar: WorkCalendar, severity: str, opened_at: datetime) -> Deadlines:
    """When a case must be answered and resolved, and when staff are warned (at `warn_at` of each span).

    The resolution is due by the end of the N-th working day, and never before the end of the day the
    response is due: an urgent report at 17:50 is not due to be fixed ten minutes later.
    """
    hours = policy.working_hours
    rule = policy.sla.rule(canonical_severity(severity))
    start = working_start(calendar, hours, opened_at)
    respond_by = add_working_minutes(calendar, hours, start, rule.respond_minutes)
    resolve_by = max(
        end_of_working_day(calendar, hours, start, rule.resolve_working_days),
        calendar.at(respond_by.astimezone(calendar.zone).date(), hours.end),
    )

    def warning(deadline: datetime) -> datetime:
        span = working_minutes_between(calendar, hours, start, deadline)
        return add_working_minutes(calendar, hours, start, int(span * policy.warn_at))

    return Deadlines(respond_by, resolve_by, warning(respond_by), warning(resolve_by))
