"""The working-day calendar and the follow-up policy: pure, no database, no clock."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import (
    PolicyError,
    load_policy,
    planned_to_json,
    reminder_at,
    routine_sample,
    schedule_for_event,
)
from tests.conftest import holidays_known_until

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
# Holiday data up to 2026, none for 2027 on: the fallback years stay fallback years whatever release is installed.
KNOWN_UNTIL = 2026
CALENDAR = WorkCalendar.from_policy(POLICY, source=holidays_known_until(KNOWN_UNTIL))
ROOT = Path(__file__).resolve().parent.parent


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_national_day_installation_waits_for_the_holiday_and_ends_on_a_make_up_saturday() -> None:
    first, second = schedule_for_event(POLICY, CALENDAR, "installation", at(2025, 9, 30, 15, 0))
    assert first.kind == "install_first"
    assert first.send_at == at(2025, 10, 9, 9, 0)
    assert first.window_end.date() == date(2025, 10, 11)  # a make-up working Saturday
    assert not first.estimated
    for planned in (first, second):
        assert not date(2025, 10, 1) <= planned.send_at.date() <= date(2025, 10, 8)
    assert second.kind == "install_second" and CALENDAR.is_workday(second.send_at.date())
    assert second.window_end >= second.send_at


def test_a_repair_resolved_on_friday_evening_is_followed_up_on_monday_morning() -> None:
    (repair,) = schedule_for_event(POLICY, CALENDAR, "repair-resolved", at(2026, 11, 20, 19, 30))
    assert (repair.kind, repair.send_at) == ("repair", at(2026, 11, 23, 9, 0))
    assert repair.window_end == at(2026, 11, 25, 20, 0)


def test_a_year_without_holiday_data_falls_back_to_weekdays_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    calendar = WorkCalendar.from_policy(POLICY, source=holidays_known_until(KNOWN_UNTIL))
    with caplog.at_level(logging.WARNING, logger="posbot.calendar"):
        (plan,) = schedule_for_event(POLICY, calendar, "complaint-closed", at(2027, 3, 5, 10, 0))  # a Friday
        schedule_for_event(POLICY, calendar, "complaint-closed", at(2027, 4, 5, 10, 0))
    assert plan.estimated
    assert plan.send_at == at(2027, 3, 8, 9, 0)  # Monday
    assert [r.message for r in caplog.records].count(
        "no holiday data for 2027: assuming Monday-Friday until it is installed"
    ) == 1


def test_quiet_hours_move_a_late_evening_moment_to_the_next_working_morning() -> None:
    assert CALENDAR.next_allowed_slot(at(2026, 11, 20, 23, 30)) == at(2026, 11, 23, 9, 0)
    assert CALENDAR.next_allowed_slot(at(2026, 11, 24, 6, 0)) == at(2026, 11, 24, 9, 0)
    assert CALENDAR.next_allowed_slot(at(2026, 11, 24, 14, 0)) == at(2026, 11, 24, 14, 0)
    assert reminder_at(POLICY, CALENDAR, at(2026, 11, 20, 15, 0)) == at(2026, 11, 23, 9, 0)


def test_a_key_account_installation_adds_the_next_quarterly_review() -> None:
    plans = schedule_for_event(POLICY, CALENDAR, "installation", at(2026, 8, 10, 10, 0), key_account=True)
    review = plans[-1]
    assert review.kind == "key_account"
    assert review.send_at == at(2026, 10, 8, 9, 0)  # the fourth quarter's first working day after National Day
    assert not review.estimated
    later = schedule_for_event(POLICY, CALENDAR, "installation", at(2026, 11, 24, 10, 0), key_account=True)[-1]
    assert later.send_at.date() == date(2027, 1, 1) and later.estimated  # no 2027 holiday data


def test_the_routine_sample_is_reproducible_and_about_the_fraction() -> None:
    ids = list(range(1, 1001))
    november = routine_sample(ids, (2026, 11), 0.1, seed=7)
    assert november == routine_sample(list(reversed(ids)), (2026, 11), 0.1, seed=7)
    assert len(november) == 100
    assert routine_sample(ids, (2026, 12), 0.1, seed=7) != november
    assert routine_sample([], (2026, 12), 0.1, seed=7) == []


def test_a_broken_policy_file_names_the_field(tmp_path: Path) -> None:
    text = (ROOT / "bot" / "followup_policy.toml").read_text(encoding="utf-8")
    broken = tmp_path / "policy.toml"
    broken.write_text(text.replace("due_working_day = 3", "due_working_day = 0", 1), encoding="utf-8")
    with pytest.raises(PolicyError, match="install_first.due_working_day"):
        load_policy(broken)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)))
def test_the_next_allowed_slot_is_never_earlier_and_always_inside_working_hours(moment: datetime) -> None:
    slot = CALENDAR.next_allowed_slot(moment)
    local = slot.astimezone(SHANGHAI)
    assert slot >= moment
    assert time(9, 0) <= local.time() < time(20, 0)
    assert CALENDAR.is_workday(local.date())
    assert slot - moment < timedelta(days=12)


def test_schedule_preview_prints_one_json_object_per_follow_up() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "schedule-preview", "--event", "installation", "--at", "2025-09-30T15:00"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {
        "kind": "install_first",
        "send_at": "2025-10-09T09:00:00+08:00",
        "window_end": "2025-10-11T20:00:00+08:00",
        "estimated": False,
    }
    assert {line["kind"] for line in lines} == {"install_first", "install_second"}


def test_a_plan_in_a_year_without_holiday_data_is_printed_as_estimated() -> None:
    (plan,) = schedule_for_event(POLICY, CALENDAR, "repair-resolved", at(2027, 5, 6, 10, 0))
    assert planned_to_json(plan)["estimated"] is True
