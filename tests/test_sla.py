"""SLA deadlines in staff working time, and the `[desk]` policy section they come from."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.calendar import WorkCalendar
from bot.domain.desk_policy import DeskPolicy, WorkingHours
from bot.domain.followup_policy import DEFAULT_POLICY, PolicyError, load_policy
from bot.domain.sla import Deadlines, add_working_minutes, deadlines, end_of_working_day, working_minutes_between
from tests.conftest import holidays_known_until

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
DESK = POLICY.desk
HOURS = DESK.working_hours
# Holiday data up to 2026 and none after, whatever chinesecalendar release is installed.
CALENDAR = WorkCalendar.from_policy(POLICY, source=holidays_known_until(2026))


def at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def test_an_urgent_report_at_ten_to_six_on_friday_is_answered_monday_at_twenty_past_nine() -> None:
    assert deadlines(DESK, CALENDAR, "urgent", at(2026, 11, 20, 17, 50)) == Deadlines(
        respond_by=at(2026, 11, 23, 9, 20),
        # Not Friday 18:00, ten minutes after the report: the day the response is due.
        resolve_by=at(2026, 11, 23, 18, 0),
        warn_respond_at=at(2026, 11, 23, 9, 14),  # 24 of the 30 working minutes
        warn_resolve_at=at(2026, 11, 23, 16, 10),  # 440 of the 550 working minutes
    )


def test_a_report_during_the_national_day_holiday_counts_from_the_first_working_day_after_it() -> None:
    due = deadlines(DESK, CALENDAR, "normal", at(2026, 10, 1, 10, 0))
    assert due.respond_by == at(2026, 10, 8, 13, 0)  # Thursday 8 October, 240 minutes after 09:00
    # Friday 9th, make-up Saturday 10th, Monday 12th: the third working day after the 8th.
    assert due.resolve_by == at(2026, 10, 12, 18, 0)
    assert due.warn_respond_at == at(2026, 10, 8, 12, 12)


def test_a_make_up_saturday_counts_as_working_time() -> None:
    due = deadlines(DESK, CALENDAR, "partial", at(2026, 10, 9, 17, 0))
    assert due.respond_by == at(2026, 10, 10, 10, 0)  # one hour on Friday, one on the make-up Saturday
    assert due.resolve_by == at(2026, 10, 10, 18, 0)


def test_a_report_at_night_counts_from_the_next_working_start() -> None:
    assert deadlines(DESK, CALENDAR, "urgent", at(2026, 11, 24, 2, 0)).respond_by == at(2026, 11, 24, 9, 30)
    assert deadlines(DESK, CALENDAR, "urgent", at(2026, 11, 24, 18, 0)).respond_by == at(2026, 11, 25, 9, 30)
    assert deadlines(DESK, CALENDAR, "urgent", at(2026, 11, 21, 11, 0)).respond_by == at(2026, 11, 23, 9, 30)


def test_a_deadline_that_falls_at_closing_time_stays_on_that_day() -> None:
    assert add_working_minutes(CALENDAR, HOURS, at(2026, 11, 24, 14, 0), 240) == at(2026, 11, 24, 18, 0)
    assert add_working_minutes(CALENDAR, HOURS, at(2026, 11, 24, 14, 0), 241) == at(2026, 11, 25, 9, 1)


def test_working_minutes_skip_nights_and_weekends() -> None:
    # Friday 17:00 to Monday 10:00: an hour on Friday, an hour on Monday.
    assert working_minutes_between(CALENDAR, HOURS, at(2026, 11, 20, 17, 0), at(2026, 11, 23, 10, 0)) == 120
    assert working_minutes_between(CALENDAR, HOURS, at(2026, 11, 23, 10, 0), at(2026, 11, 20, 17, 0)) == 0
    assert add_working_minutes(CALENDAR, HOURS, at(2026, 11, 20, 17, 0), 3 * 540) == at(2026, 11, 25, 17, 0)


def test_the_end_of_a_working_day_is_staff_closing_time_not_the_merchants_quiet_hours() -> None:
    assert end_of_working_day(CALENDAR, HOURS, at(2026, 11, 24, 10, 0)) == at(2026, 11, 24, 18, 0)
    assert end_of_working_day(CALENDAR, HOURS, at(2026, 11, 24, 19, 0)) == at(2026, 11, 25, 18, 0)
    assert end_of_working_day(CALENDAR, HOURS, at(2026, 11, 20, 10, 0), days_after=1) == at(2026, 11, 23, 18, 0)


def test_a_year_without_holiday_data_counts_monday_to_friday() -> None:
    due = deadlines(DESK, CALENDAR, "normal", at(2027, 3, 5, 16, 0))  # a Friday in a year with no data
    assert due.respond_by == at(2027, 3, 8, 11, 0)
    assert due.resolve_by == at(2027, 3, 10, 18, 0)


def test_a_holiday_from_the_injected_source_stops_the_clock() -> None:
    holiday = date(2026, 11, 23)  # a Monday declared a holiday by the injected source
    calendar = WorkCalendar(source=lambda day: day.weekday() < 5 and day != holiday)
    due = deadlines(DESK, calendar, "urgent", at(2026, 11, 20, 17, 50))
    assert due.respond_by == at(2026, 11, 24, 9, 20)


def test_a_legacy_high_severity_ticket_gets_the_urgent_deadlines() -> None:
    opened = at(2026, 11, 24, 10, 0)
    assert deadlines(DESK, CALENDAR, "high", opened) == deadlines(DESK, CALENDAR, "urgent", opened)


def test_warnings_come_before_their_deadlines_for_every_severity() -> None:
    for severity in ("urgent", "partial", "normal"):
        for opened in (at(2026, 11, 24, 9, 0), at(2026, 11, 24, 17, 59), at(2026, 9, 30, 16, 0)):
            due = deadlines(DESK, CALENDAR, severity, opened)
            assert opened < due.warn_respond_at < due.respond_by <= due.resolve_by
            assert due.warn_resolve_at < due.resolve_by
            for moment in (due.respond_by, due.resolve_by):
                assert HOURS.start <= moment.time() <= HOURS.end
                assert CALENDAR.is_workday(moment.date())


# ---- the [desk] section of the policy file ---------------------------------------------------------


def test_the_shipped_policy_file_spells_out_the_desk_defaults() -> None:
    assert load_policy().desk == DeskPolicy()
    assert (DESK.warranty_days, DESK.warn_at) == (90, 0.8)
    assert (HOURS.start, HOURS.end) == (time(9, 0), time(18, 0))
    assert DESK.sla.rule("urgent").respond_minutes == 30
    assert DESK.routing.role_for("install_first") == "sales"
    assert DESK.routing.role_for("repair") == "aftersales"
    assert DESK.routing.role_for("key_account") == "aftersales"
    assert DESK.routing.role_for("routine") == "service"
    assert DESK.routing.role_for("something_new") == "service"


def test_an_older_policy_copy_without_a_desk_section_still_loads(tmp_path: Path) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    old = tmp_path / "policy.toml"
    old.write_text(text[: text.index("[desk]")], encoding="utf-8")
    assert load_policy(old).desk == DeskPolicy()


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ('[desk]\nsupervisor_only = ["delete_everything"]\n', "desk.supervisor_only"),
        ('[desk.working_hours]\nstart = "18:00"\nend = "09:00"\n', "desk.working_hours"),
        ('[desk.routing]\nrepair = "engineer"\n', "desk.routing.repair"),
        ("[desk]\nwarn_at = 1.5\n", "desk.warn_at"),
    ],
)
def test_a_desk_section_operations_got_wrong_is_refused_naming_the_field(
    tmp_path: Path, section: str, field: str
) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    bad = tmp_path / "policy.toml"
    bad.write_text(text[: text.index("[desk]")] + section, encoding="utf-8")
    with pytest.raises(PolicyError, match=f": {field}: "):
        load_policy(bad)


def test_working_hours_must_start_before_they_end() -> None:
    with pytest.raises(ValueError):
        WorkingHours(start=time(18, 0), end=time(9, 0))
