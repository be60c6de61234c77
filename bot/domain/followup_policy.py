"""The follow-up policy: which follow-ups an event calls for, and when each is sent and due.

Numbers come from `bot/followup_policy.toml` (or the file FOLLOWUP_POLICY names);
dates come from the working-day calendar. Pure: the event time is passed in.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.domain.calendar import WorkCalendar
from bot.domain.desk_policy import DeskPolicy
from bot.domain.indicators import ReportPolicy
from bot.domain.retention import RetentionPolicy

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "followup_policy.toml"
Event = Literal["installation", "repair-resolved", "complaint-closed"]


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form: str


class WorkingDays(_Section):
    send_working_day: int = Field(ge=1, le=30)
    due_working_day: int = Field(ge=1, le=60)

    @model_validator(mode="after")
    def _order(self) -> WorkingDays:
        if self.due_working_day < self.send_working_day:
            raise ValueError("due_working_day comes before send_working_day")
        return self


class CalendarDays(_Section):
    send_day: int = Field(ge=1, le=120)
    due_day: int = Field(ge=1, le=180)

    @model_validator(mode="after")
    def _order(self) -> CalendarDays:
        if self.due_day < self.send_day:
            raise ValueError("due_day comes before send_day")
        return self


class Routine(_Section):
    sample_fraction: float = Field(gt=0, le=1)
    seed: int
    window_working_days: int = Field(default=5, ge=1, le=30)


class KeyAccount(_Section):
    window_working_days: int = Field(default=5, ge=1, le=30)


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time
    end: time

    @model_validator(mode="after")
    def _order(self) -> QuietHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class FollowUpPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Shanghai"
    reminder_after_hours: float = Field(default=24, gt=0)
    quiet_hours: QuietHours
    install_first: WorkingDays
    install_second: CalendarDays
    repair: WorkingDays
    complaint: WorkingDays
    routine: Routine
    key_account: KeyAccount
    desk: DeskPolicy = DeskPolicy()  # an older policy copy without [desk] gets the defaults
    report: ReportPolicy = ReportPolicy()  # the quality indicators' targets and the weekly report
    retention: RetentionPolicy = RetentionPolicy()  # an older policy copy without [retention] gets the defaults


@dataclass(frozen=True)
class PlannedFollowUp:
    kind: str
    form_key: str
    send_at: datetime
    window_end: datetime
    estimated: bool


def load_policy(path: Path | None = None) -> FollowUpPolicy:
    source = path or DEFAULT_POLICY
    try:
        raw: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        # The path as the operator wrote it, once: "policy.toml: No such file or directory".
        raise PolicyError(f"{source}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{source}: {str(exc).splitlines()[0]}") from None
    try:
        return FollowUpPolicy.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "policy"
        raise PolicyError(f"{source}: {field}: {error['msg']}") from None


def _working_days_plan(calendar: WorkCalendar, kind: str, rule: WorkingDays, at: datetime) -> PlannedFollowUp:
    send_day, guess_send = calendar.add_working_days(at, rule.send_working_day)
    due_day, guess_due = calendar.add_working_days(at, rule.due_working_day)
    return PlannedFollowUp(
        kind,
        rule.form,
        calendar.at(send_day, calendar.day_start),
        calendar.end_of_working_day(due_day),
        guess_send or guess_due,
    )


def _calendar_days_plan(calendar: WorkCalendar, kind: str, rule: CalendarDays, at: datetime) -> PlannedFollowUp:
    local = at.astimezone(calendar.zone).date()
    send_at = calendar.next_allowed_slot(calendar.at(local + timedelta(days=rule.send_day), calendar.day_start))
    # Due by the end of day N, or of the first working day after it when day N is a holiday.
    due_day, guess_due = calendar.first_workday_from(local + timedelta(days=rule.due_day))
    window_end = max(calendar.end_of_working_day(due_day), calendar.end_of_working_day(send_at.date()))
    return PlannedFollowUp(kind, rule.form, send_at, window_end, calendar.slot_is_estimated(send_at) or guess_due)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_quarter_start(day: date) -> date:
    start = quarter_start(day)
    return date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)


def key_account_plan(policy: FollowUpPolicy, calendar: WorkCalendar, at: datetime) -> PlannedFollowUp:
    """The review for the quarter after `at`: sent on that quarter's first working day."""
    first, guess_first = calendar.first_workday_from(next_quarter_start(at.astimezone(calendar.zone).date()))
    send_at = calendar.at(first, calendar.day_start)
    due, guess_due = calendar.add_working_days(send_at, policy.key_account.window_working_days)
    return PlannedFollowUp(
        "key_account", policy.key_account.form, send_at, calendar.end_of_working_day(due), guess_first or guess_due
    )


def schedule_for_event(
    policy: FollowUpPolicy, calendar: WorkCalendar, event: Event, at: datetime, key_account: bool = False
) -> list[PlannedFollowUp]:
    if event == "installation":
        planned = [
            _working_days_plan(calendar, "install_first", policy.install_first, at),
            _calendar_days_plan(calendar, "install_second", policy.install_second, at),
        ]
        if key_account:
            planned.append(key_account_plan(policy, calendar, at))
        return planned
    if event == "repair-resolved":
        return [_working_days_plan(calendar, "repair", policy.repair, at)]
    if event == "complaint-closed":
        return [_working_days_plan(calendar, "complaint", policy.complaint, at)]
    raise ValueError(f"unknown event {event!r}")


def reminder_at(policy: FollowUpPolicy, calendar: WorkCalendar, sent_at: datetime) -> datetime:
    """One reminder after the configured hours, moved into allowed hours on a working day."""
    return calendar.next_allowed_slot(sent_at + timedelta(hours=policy.reminder_after_hours))


def routine_sample(merchant_ids: Iterable[int], month: tuple[int, int], fraction: float, seed: int) -> list[int]:
    """This month's sample: the same inputs give the same merchants; another month, others."""
    population = sorted(set(merchant_ids))
    if not population:
        return []
    size = max(1, round(len(population) * fraction))
    year, number = month
    rng = random.Random(seed * 10_000 + year * 100 + number)
    return sorted(rng.sample(population, min(size, len(population))))


def planned_to_json(planned: PlannedFollowUp) -> dict[str, Any]:
    return {
        "kind": planned.kind,
        "send_at": planned.send_at.isoformat(),
        "window_end": planned.window_end.isoformat(),
        "estimated": planned.estimated,
    }
