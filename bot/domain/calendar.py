"""The working-day calendar: Chinese statutory holidays, make-up working days (调休), quiet hours.

Pure: it never reads the clock; every answer is a function of the moment passed in.
The `chinesecalendar` package knows the State Council's holiday notices up to its
release; for a later year the calendar falls back to Monday-Friday and says so
(`estimated`), so follow-ups planned on a guess can be recomputed once the data
exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger("posbot.calendar")

# How far ahead we look for a working day before giving up (the longest Chinese holiday is 8 days).
SEARCH_DAYS = 60


class HolidaySource(Protocol):
    def __call__(self, day: date) -> bool:
        """Whether `day` is a working day; raises NotImplementedError for a year without data."""
        ...


class QuietHours(Protocol):
    @property
    def start(self) -> time: ...
    @property
    def end(self) -> time: ...


class CalendarPolicy(Protocol):
    """What the calendar needs of the follow-up policy (kept structural: the policy builds on the calendar)."""

    @property
    def timezone(self) -> str: ...
    @property
    def quiet_hours(self) -> QuietHours: ...


def chinese_workday(day: date) -> bool:
    return bool(chinese_calendar.is_workday(day))


class WorkCalendar:
    def __init__(
        self,
        zone: ZoneInfo | str = "Asia/Shanghai",
        day_start: time = time(9, 0),
        day_end: time = time(20, 0),
        source: HolidaySource | Callable[[date], bool] = chinese_workday,
    ) -> None:
        self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        if day_start >= day_end:
            raise ValueError("quiet hours: the day must start before it ends")
        self.day_start = day_start
        self.day_end = day_end
        self.source = source
        self._warned: set[int] = set()

    @classmethod
    def from_policy(cls, policy: CalendarPolicy, source: HolidaySource | None = None) -> WorkCalendar:
        return cls(policy.timezone, policy.quiet_hours.start, policy.quiet_hours.end, source or chinese_workday)

    # ---- days ------------------------------------------------------------------------------------

    def workday_info(self, day: date) -> tuple[bool, bool]:
        """(is a working day, estimated): estimated when the year has no holiday data."""
        try:
            return bool(self.source(day)), False
        except NotImplementedError:
            if day.year not in self._warned:
                self._warned.add(day.year)
                log.warning("no holiday data for %s: assuming Monday-Friday until it is installed", day.year)
            return day.weekday() < 5, True

    def is_workday(self, day: date) -> bool:
        return self.workday_info(day)[0]

    def has_data(self, year: int) -> bool:
        try:
            self.source(date(year, 6, 1))
        except NotImplementedError:
            return False
        return True

    def add_working_days(self, start: datetime, n: int) -> tuple[date, bool]:
        """The n-th working day strictly after `start`'s local date, and whether that was a guess."""
        day = start.astimezone(self.zone).date()
        estimated = False
        counted = 0
        for _ in range(n * 7 + SEARCH_DAYS):
            day += timedelta(days=1)
            working, guess = self.workday_info(day)
            estimated = estimated or guess
            if working:
                counted += 1
                if counted == n:
                    return day, estimated
        raise ValueError(f"no {n} working days found after {start.date()}")

    def first_workday_from(self, day: date) -> tuple[date, bool]:
        """`day` itself when it is a working day, else the next one."""
        estimated = False
        for offset in range(SEARCH_DAYS):
            candidate = day + timedelta(days=offset)
            working, guess = self.workday_info(candidate)
            estimated = estimated or guess
            if working:
                return candidate, estimated
        raise ValueError(f"no working day within {SEARCH_DAYS} days of {day}")

    # ---- hours -----------------------------------------------------------------------------------

    def at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.zone)

    def end_of_working_day(self, day: date) -> datetime:
        """A follow-up window ends when the merchant's working day does (the quiet-hours end)."""
        return self.at(day, self.day_end)

    def next_allowed_slot(self, moment: datetime, working_days_only: bool = True) -> datetime:
        """`moment` when it falls inside allowed hours on a working day, else the next allowed start."""
        local = moment.astimezone(self.zone)
        day = local.date()
        if local.time() >= self.day_end:
            day += timedelta(days=1)
        if working_days_only:
            workday, _ = self.first_workday_from(day)
        else:
            workday = day
        if workday == local.date() and self.day_start <= local.time() < self.day_end:
            return local
        return self.at(workday, self.day_start)

    def slot_is_estimated(self, moment: datetime) -> bool:
        return self.workday_info(moment.astimezone(self.zone).date())[1]
