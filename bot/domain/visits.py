"""On-site visits (document 003, step 4): the appointment times staff can offer a merchant.

Pure: `now` is passed in. A slot is a moment in staff working hours on a working day of the
holiday calendar, never in the past; the merchant's own preferred time comes first when it is
still ahead. A slot travels on a button as whole minutes since the epoch, which is also how a
press on an appointment that has since changed is told apart from a current one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

from bot.domain.calendar import WorkCalendar
from bot.domain.desk_policy import WorkingHours

# Late morning and early afternoon: an engineer can reach the shop after the day's first calls.
SLOT_TIMES: tuple[time, ...] = (time(10, 0), time(14, 0))
# A slot closer than this is no appointment an engineer can keep.
LEAD = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def visit_slots(
    now: datetime,
    calendar: WorkCalendar,
    hours: WorkingHours,
    *,
    preferred: datetime | None = None,
    days: int = 3,
    times: Sequence[time] = SLOT_TIMES,
    lead: timedelta = LEAD,
) -> list[datetime]:
    """The merchant's preferred time if still ahead, then `times` on the next `days` working days.

    Only times inside staff working hours count; when none of `times` is, the start of the working
    day is offered instead. Today counts as one of the days when one of its slots is still ahead.
    """
    if days < 1:
        raise ValueError("days: at least one working day of slots")
    earliest = now + lead
    inside = sorted(t for t in times if hours.start <= t < hours.end) or [hours.start]
    slots: list[datetime] = []
    if preferred is not None and preferred > now:
        slots.append(preferred.astimezone(calendar.zone))
    day = now.astimezone(calendar.zone).date()
    counted = 0
    for _ in range(days * 7 + 60):
        if counted == days:
            break
        if calendar.is_workday(day):
            ahead = [calendar.at(day, t) for t in inside if calendar.at(day, t) > earliest]
            fresh = [slot for slot in ahead if all(slot != other for other in slots)]
            slots.extend(fresh)
            counted += 1 if ahead else 0
        day += timedelta(days=1)
    return slots


def epoch_minutes(at: datetime) -> int:
    """`at` as whole minutes since 1970 (UTC): short enough for a button, exact for a slot on the minute."""
    return int((at - EPOCH).total_seconds() // 60)


def from_epoch_minutes(minutes: int) -> datetime:
    return EPOCH + timedelta(minutes=minutes)
