"""The quality indicators on a small hand-made history whose right answers are worked out here.

November 2026 up to the fixture's "now" (Tuesday 24th, 10:00 Shanghai): follow-ups, survey answers,
repair cases and complaints, plus rows just outside the period or not counting, which must not move
any figure.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bot.app import Core
from bot.domain.indicators import INDICATORS, Indicator, nearest_rank, target_for
from bot.services.indicators import Period, period_report
from bot.storage.models import Answer, FollowUp, Merchant, Staff, Submission, Terminal, Ticket
from tests.conftest import SHANGHAI

WANG, LI = 800001, 800002  # after-sales engineer, sales


def nov(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def november(core: Core) -> Period:
    return Period.of_days(date(2026, 11, 1), date(2026, 11, 30), SHANGHAI, core.clock.now())


class History:
    """Rows added straight to the tables, as the services would have left them."""

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self._ids = iter(range(1, 10_000))

    def followup(self, kind: str, window_end: datetime, **columns: Any) -> FollowUp:
        ident = next(self._ids)
        row = FollowUp(
            id=ident,
            kind=kind,
            form_key="post_repair" if kind == "repair" else kind,
            merchant_id=columns.pop("merchant_id", 1),
            source_key=f"test:{ident}",
            status=columns.pop("status", "completed"),
            send_at=window_end - timedelta(days=2),
            window_end=window_end,
            created_at=window_end - timedelta(days=3),
            estimated=False,
            attempts=0,
            **columns,
        )
        self.rows.append(row)
        return row

    def survey(
        self,
        answers: dict[str, tuple[str, Any]],
        finished: datetime | None,
        *,
        status: str = "submitted",
        **columns: Any,
    ) -> Submission:
        ident = next(self._ids)
        submission = Submission(
            id=ident,
            form_key=columns.pop("form_key", "routine"),
            form_version=1,
            telegram_user_id=1,
            merchant_id=1,
            status=status,
            locale="en",
            method=columns.pop("method", "chat"),
            started_at=(finished or nov(2)) - timedelta(minutes=5),
            finished_at=finished,
            **columns,
        )
        self.rows.append(submission)
        for key, (kind, value) in answers.items():
            self.rows.append(
                Answer(submission_id=ident, question_key=key, kind=kind, value=value, answered_at=submission.started_at)
            )
        return submission

    def ticket(self, kind: str, created: datetime, **columns: Any) -> Ticket:
        ident = next(self._ids)
        row = Ticket(
            id=ident,
            number=f"{kind[0].upper()}-2026-{ident:06d}",
            kind=kind,
            status=columns.pop("status", "new"),
            merchant_id=1,
            severity="normal",
            created_at=created,
            reopen_count=columns.pop("reopen_count", 0),
            **columns,
        )
        self.rows.append(row)
        return row


async def seed(core: Core) -> None:
    h = History()
    h.rows += [
        Merchant(id=1, name="Lucky Noodles", invite_code="c1", created_at=nov(1)),
        Merchant(id=2, name="Golden Bakery", invite_code="c2", created_at=nov(1)),
        Terminal(id=1, serial="AB123456", merchant_id=1, model="P300"),
        Terminal(id=2, serial="CD100001", merchant_id=2, model="A8"),
        Staff(id=1, telegram_user_id=WANG, name="Wang", role="aftersales", active=True),
        Staff(id=2, telegram_user_id=LI, name="Li", role="sales", active=True),
    ]
    # Timeliness: 8 follow-ups due in November: 7 answered by their window's end (two of them by phone),
    # one merchant unreachable. 7/8 = 0.875.
    for day in (3, 5, 9, 12):
        f = h.followup("install_first", nov(day, 18), terminal_id=1, completed_at=nov(day, 11), method="chat")
        h.survey({"working": ("yes_no", True)}, nov(day, 11), followup_id=f.id, form_key="install_first")
    repair = h.ticket("repair", nov(1, 9), status="closed", resolved_at=nov(1, 11), resolution_method="onsite")
    f = h.followup("repair", nov(6, 18), ticket_id=repair.id, completed_at=nov(4, 15), method="phone", handled_by=WANG)
    h.survey({"fixed": ("yes_no", True)}, nov(4, 15), followup_id=f.id, form_key="post_repair", method="phone")
    # By phone, but nobody recorded who phoned: an incomplete record.
    f = h.followup("repair", nov(10, 18), ticket_id=repair.id, completed_at=nov(9, 15), method="phone")
    h.survey({"fixed": ("yes_no", True)}, nov(9, 15), followup_id=f.id, form_key="post_repair", method="phone")
    # Completed, but no submitted survey hangs off it: incomplete too.
    h.followup("routine", nov(16, 18), completed_at=nov(13, 10), method="chat")
    h.followup(
        "routine", nov(20, 18), merchant_id=2, status="escalated", escalation_reason="unreachable", completed_at=None
    )
    # Completed in November, but due in October: counts for completeness only (complete, and late).
    f = h.followup("install_second", nov(1, 0) - timedelta(hours=1), terminal_id=2, completed_at=nov(2), method="chat")
    h.survey({"familiar": ("yes_no", True)}, nov(2), followup_id=f.id, form_key="install_second")
    # Not counted anywhere: cancelled, due after now, due in October.
    h.followup("routine", nov(18, 18), status="cancelled", completed_at=None)
    h.followup("routine", nov(27, 18), status="sent", completed_at=None)
    h.followup(
        "routine", datetime(2026, 10, 20, 18, tzinfo=SHANGHAI), completed_at=datetime(2026, 10, 20, tzinfo=SHANGHAI)
    )

    # Satisfaction: ten ratings in November, seven of them 4 or 5 (0.7), averaging 37/10 = 3.7.
    for i, value in enumerate((5, 4, 4, 3, 2, 5, 5, 4, 1, 4)):
        h.survey({"attitude": ("rating", value)}, nov(2 + i), method="phone" if i < 2 else "chat", operator_id=LI)
    # NPS: 10, 9 promote, 8 is passive, 6 and 0 detract: (2 - 2) / 5 = 0.
    for value in (10, 9, 8, 6, 0):
        h.survey({"recommend": ("nps", value)}, nov(15))
    # Not counted: a skipped rating, an unfinished survey, an October answer.
    h.survey({"attitude": ("rating", None)}, nov(3))
    h.survey({"attitude": ("rating", 1)}, None, status="in_progress")
    h.survey({"attitude": ("rating", 1)}, datetime(2026, 10, 31, 12, tzinfo=SHANGHAI))

    # Repairs reported in November: 10 (plus the closed one above = 11). Resolved or closed: 9 of the ten and
    # the first: 10/11. Remotely: 6/11. First response after 10, 20, ..., 100 minutes (median 50, p90 90;
    # the first case had no response recorded). SLA: each due a day later, one resolved too late; the open
    # one missed: 9 met of 11 due in the period (the first one met: resolved 11:00, due none) -> see below.
    for i in range(10):
        created = nov(2 + i, 9)
        resolved = created + timedelta(hours=30 if i == 8 else 3)
        h.ticket(
            "repair",
            created,
            status="new" if i == 9 else ("closed" if i % 2 else "resolved"),
            category="printing" if i < 6 else "network",
            terminal_id=1 if i < 7 else 2,
            assignee_id=1 if i < 5 else 2,
            role="aftersales",
            first_response_at=created + timedelta(minutes=10 * (i + 1)),
            respond_due_at=created + timedelta(hours=2),
            sla_due_at=created + timedelta(days=1),
            resolved_at=None if i == 9 else resolved,
            resolution_method=None if i == 9 else ("remote" if i < 6 else "onsite"),
        )
    # Complaints: four, one reopened (0.25); by subject: two slow responses, fees, a serious attitude one.
    h.ticket("complaint", nov(3), category="slow_response", status="closed", agreed_outcome="apology")
    h.ticket("complaint", nov(4), category="slow_response", status="reopened", reopen_count=1)
    h.ticket("complaint", nov(5), category="unreasonable_fees", status="resolved", agreed_outcome="refund")
    h.ticket("complaint", nov(6), category="staff_attitude", status="taken", serious=True)
    h.ticket("complaint", datetime(2026, 10, 30, tzinfo=SHANGHAI), category="other")

    async with core.sessions() as session, session.begin():
        for row in h.rows:
            session.add(row)
            await session.flush()
        if session.get_bind().dialect.name == "postgresql":  # ids were given: move the sequences past them
            for table in ("merchants", "terminals", "staff", "followups", "submissions", "tickets"):
                await session.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )


async def report_for(core: Core) -> dict[str, Indicator]:
    async with core.sessions() as session:
        return (await period_report(session, core.policy, november(core))).indicators


def by(report: Any, dim: str, name: str) -> dict[str, Any]:
    return {row["key"]: row for row in report.breakdowns[dim][name]}


async def test_every_indicator_on_a_hand_made_month(core: Core) -> None:
    await seed(core)
    async with core.sessions() as session:
        report = await period_report(session, core.policy, november(core))
    got = report.indicators

    assert (got["timeliness_rate"].numerator, got["timeliness_rate"].denominator) == (7, 8)
    assert got["timeliness_rate"].value == 0.875
    # Completed in November: 7 + the October one; 2 incomplete (no operator, no survey): 6/8.
    assert got["completeness_rate"].value == 0.75
    assert got["satisfaction_rate"].value == 0.7
    assert got["average_rating"].value == 3.7
    assert got["nps"].value == 0
    assert got["nps"].extra == {"answers": 5, "promoters": 2, "detractors": 2}
    # 11 repairs reported: the first (closed, on site) and ten more, of which nine are resolved or closed.
    assert (got["resolution_rate"].numerator, got["resolution_rate"].denominator) == (10, 11)
    assert got["remote_resolution_rate"].value == 6 / 11
    assert got["first_response_minutes_median"].value == 50
    assert got["first_response_minutes_median"].extra["p90"] == 90
    # SLA due in the period: the ten (the first case had no deadline). Met: not the late one, not the open one.
    assert (got["sla_compliance_rate"].numerator, got["sla_compliance_rate"].denominator) == (8, 10)
    assert got["complaints"].value == 4
    assert got["complaint_reopen_rate"].value == 0.25
    assert report.unreachable_merchants == 1

    # Met or missed against the policy's defaults.
    assert got["timeliness_rate"].met is False  # 0.875 < 0.95
    assert got["resolution_rate"].met is True  # 10/11 >= 0.90
    assert got["remote_resolution_rate"].met is True  # 0.545 >= 0.5
    assert got["first_response_minutes_median"].met is True  # 50 <= 60
    # November up to the 24th, 10:00: 23.4 days, so the ceiling is 10 * 23.4 / 30 = 7.8 complaints.
    assert got["complaints"].target == round(10 * november(core).days / 30, 1)
    assert got["complaints"].met is True
    assert got["complaint_reopen_rate"].met is False  # 0.25 > 0.10

    # Breakdowns: by staff member, role, method, fault category, terminal model.
    assert by(report, "method", "timeliness_rate")["phone"]["value"] == 1.0
    assert by(report, "method", "satisfaction_rate")["phone"]["denominator"] == 2
    assert by(report, "staff", "resolution_rate")["Wang"]["denominator"] == 5
    assert by(report, "staff", "first_response_minutes_median")["Li"]["value"] == 80  # 60..100: 3rd of 5
    assert by(report, "category", "resolution_rate")["network"]["value"] == 3 / 4
    assert by(report, "model", "resolution_rate")["A8"]["denominator"] == 3
    assert by(report, "role", "timeliness_rate")["sales"]["denominator"] == 4  # the installation follow-ups
    assert report.faults == [
        {"category": "printing", "count": 6},
        {"category": "network", "count": 4},
        {"category": "", "count": 1},
    ]
    subjects = {s["subject"]: s for s in report.complaint_subjects}
    assert subjects["slow_response"]["count"] == 2 and subjects["slow_response"]["reopened"] == 1
    assert subjects["slow_response"]["outcomes"] == {"apology": 1}
    assert subjects["staff_attitude"]["serious"] == 1
    assert "region" in report.missing_dimensions


async def test_an_empty_period_judges_nothing(core: Core) -> None:
    indicators = await report_for(core)
    assert set(indicators) == set(INDICATORS)
    assert indicators["timeliness_rate"].value is None and indicators["timeliness_rate"].met is None
    assert indicators["complaints"].value == 0 and indicators["complaints"].met is True


def test_targets_and_ranks() -> None:
    assert nearest_rank(10, 1, 2) == 5 and nearest_rank(10, 9, 10) == 9 and nearest_rank(1, 9, 10) == 1
    assert nearest_rank(11, 1, 2) == 6 and nearest_rank(11, 9, 10) == 10
    from bot.domain.indicators import Targets

    assert target_for(Targets(), "complaints", 7) == 2.3
    assert Indicator("complaint_reopen_rate", 0.1, 0.1).met is True
    assert Indicator("satisfaction_rate", 0.89, 0.9).met is False
