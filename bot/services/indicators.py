"""The quality indicators for a period, counted by SQL aggregates (definitions: `bot/domain/indicators.py`).

Each family of indicators is one GROUP BY query over the dimensions it can be broken down by; the
overall figure and each dimension's figures are sums of those few groups (never a pass over rows).
Percentiles are nearest-rank, picked in SQL with ROW_NUMBER() and COUNT() over a window, which
SQLite (3.25+) and PostgreSQL both have. Read-only: the report changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.followup_policy import FollowUpPolicy
from bot.domain.indicators import (
    DETRACTOR_AT_MOST,
    INDICATORS,
    MISSING_DIMENSIONS,
    PROMOTER_AT_LEAST,
    SATISFIED_AT_LEAST,
    Indicator,
    nps_score,
    ratio,
    target_for,
)
from bot.storage.models import Answer, FollowUp, Staff, Submission, Terminal, Ticket
from bot.storage.types import UTCDateTime

RESOLVED = ("resolved", "closed")
RATINGS = tuple(str(n) for n in range(1, 6))
SATISFIED = tuple(str(n) for n in range(SATISFIED_AT_LEAST, 6))
NPS_VALUES = tuple(str(n) for n in range(0, 11))
PROMOTERS = tuple(str(n) for n in range(PROMOTER_AT_LEAST, 11))
DETRACTORS = tuple(str(n) for n in range(0, DETRACTOR_AT_MOST + 1))
# Follow-ups whose record names a terminal, and those that name a case.
NEEDS_TERMINAL = ("install_first", "install_second")
NEEDS_TICKET = ("repair", "complaint")
# Merchants the follow-ups could not reach in the chat nor on the phone.
UNREACHED = ("unreachable", "not_linked")
CHART_WEEKS = 8
NONE = ""  # a group without a value (no staff member, no terminal model): rendered as "none"


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; `first` and `last` are the local days it covers, as people asked for them."""

    start: datetime
    end: datetime
    first: date
    last: date

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    @classmethod
    def of_days(cls, first: date, last: date, zone: ZoneInfo, now: datetime) -> Period:
        start = datetime.combine(first, datetime.min.time(), zone)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
        return cls(start, max(start, min(end, now)), first, last)

    @classmethod
    def last_days(cls, days: int, zone: ZoneInfo, now: datetime) -> Period:
        """The `days` local days up to and including today."""
        today = now.astimezone(zone).date()
        return cls.of_days(today - timedelta(days=days - 1), today, zone, now)

    @classmethod
    def previous_week(cls, zone: ZoneInfo, now: datetime) -> Period:
        """Monday to Sunday of last week: what the weekly post covers."""
        monday = now.astimezone(zone).date() - timedelta(days=now.astimezone(zone).weekday() + 7)
        return cls.of_days(monday, monday + timedelta(days=6), zone, now)


@dataclass
class Report:
    period: Period
    indicators: dict[str, Indicator]
    # dimension -> indicator -> [(key, value, numerator, denominator)]
    breakdowns: dict[str, dict[str, list[dict[str, Any]]]]
    faults: list[dict[str, Any]]  # repair cases by fault category, with terminal models
    complaint_subjects: list[dict[str, Any]]  # complaints by subject: serious, reopened, outcomes agreed
    unreachable_merchants: int
    weeks: list[dict[str, Any]] = field(default_factory=list)  # the chart's weekly trend
    missing_dimensions: tuple[str, ...] = MISSING_DIMENSIONS

    def to_json(self) -> dict[str, Any]:
        """The 11 indicators, each with its value, target and met, and what it was counted from."""
        out: dict[str, Any] = {}
        for name in INDICATORS:
            indicator = self.indicators[name]
            item: dict[str, Any] = {
                "value": _rounded(indicator.value),
                "target": indicator.target,
                "met": indicator.met,
            }
            if indicator.numerator is not None:
                item["numerator"], item["denominator"] = indicator.numerator, indicator.denominator
            item.update(indicator.extra)
            by = {dim: rows[name] for dim, rows in self.breakdowns.items() if name in rows}
            if by:
                item["by"] = by
            out[name] = item
        out["complaints"]["by_subject"] = self.complaint_subjects
        out["resolution_rate"]["faults"] = self.faults
        out["timeliness_rate"]["unreachable_merchants"] = self.unreachable_merchants
        return out


def _rounded(value: float | None) -> float | None:
    if value is None or isinstance(value, int):
        return value
    return round(value, 4)


# ---- dialect helpers: the two databases count time differently ------------------------------------------


def _at(moment: datetime) -> ColumnElement[Any]:
    return type_coerce(literal(moment, UTCDateTime()), UTCDateTime())


def minutes_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 1440.0
    return func.extract("epoch", later - earlier) / 60.0


def week_index(dialect: str, moment: Any, start: datetime) -> ColumnElement[Any]:
    """Which week after `start` (0, 1, ...) a moment falls in."""
    if dialect == "sqlite":
        return cast((func.julianday(moment) - func.julianday(_at(start))) / 7, Integer)
    return cast(func.floor(func.extract("epoch", moment - _at(start)) / 604800), Integer)


def _within(column: Any, period: Period) -> ColumnElement[bool]:
    return and_(column >= _at(period.start), column < _at(period.end))


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# ---- rolling groups up -----------------------------------------------------------------------------------


def _rollup(
    rows: Sequence[Any], dims: Mapping[str, Callable[[Mapping[str, Any]], str]], sums: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]]]:
    """The totals over the groups a query returned, and per dimension per key."""
    total = {name: 0.0 for name in sums}
    by: dict[str, dict[str, dict[str, float]]] = {dim: {} for dim in dims}
    for row in rows:
        for name in sums:
            total[name] += float(row[name] or 0)
        for dim, key_of in dims.items():
            bucket = by[dim].setdefault(key_of(row), {name: 0.0 for name in sums})
            for name in sums:
                bucket[name] += float(row[name] or 0)
    return total, by


def _rows(
    by: Mapping[str, Mapping[str, float]], value: Callable[[Mapping[str, float]], float | None], num: str, den: str
) -> list[dict[str, Any]]:
    """One dimension's figures for one indicator, the biggest group first; groups with nothing counted left out."""
    found = [
        {"key": key, "value": _rounded(value(sums)), "numerator": int(sums[num]), "denominator": int(sums[den])}
        for key, sums in by.items()
        if sums[den]
    ]
    return sorted(found, key=lambda r: (-r["denominator"], r["key"]))


@dataclass
class _Emitter:
    """Writes one family's indicators: the overall figure and each dimension's."""

    add: Callable[..., None]
    breakdown: Callable[[str, str, list[dict[str, Any]]], None]
    total: dict[str, float]
    by: dict[str, dict[str, dict[str, float]]]

    def rate(self, name: str, num: str, den: str, *, counts: bool = True) -> None:
        """numerator / denominator; with `counts` the two counts go along (not for a mean)."""
        total = self.total
        if counts:
            self.add(name, ratio(total[num], total[den]), int(total[num]), int(total[den]))
        else:
            self.add(name, ratio(total[num], total[den]), None, None, **{den: int(total[den])})
        for dim, groups in self.by.items():
            self.breakdown(dim, name, _rows(groups, lambda s: ratio(s[num], s[den]), num if counts else den, den))

    def value(self, name: str, value: Callable[[Mapping[str, float]], float | None], den: str, **extra: Any) -> None:
        self.add(name, value(self.total), None, None, **extra)
        for dim, groups in self.by.items():
            self.breakdown(dim, name, _rows(groups, value, den, den))


class Indicators:
    """Counts the indicators of a period against the policy's targets."""

    def __init__(self, policy: FollowUpPolicy) -> None:
        self.policy = policy
        self.zone = ZoneInfo(policy.timezone)
        self.targets = policy.report.targets
        # A survey form's follow-up kind, so its answers are routed to the role that owns that work.
        self.kind_of_form = {
            getattr(policy, kind).form: kind
            for kind in ("install_first", "install_second", "repair", "complaint", "routine", "key_account")
        }

    def _role_of_kind(self, kind: str) -> str:
        return self.policy.desk.routing.role_for(kind)

    async def compute(self, session: AsyncSession, period: Period, *, weeks: bool = False) -> Report:
        assert session.bind is not None
        dialect = session.bind.dialect.name
        values: dict[str, Indicator] = {}
        breakdowns: dict[str, dict[str, list[dict[str, Any]]]] = {}

        def add(name: str, value: float | None, num: float | None, den: float | None, **extra: Any) -> None:
            target = target_for(self.targets, name, period.days)
            values[name] = Indicator(name, value, target, num, den, extra)

        def breakdown(dim: str, name: str, rows: list[dict[str, Any]]) -> None:
            if rows:
                breakdowns.setdefault(dim, {})[name] = rows

        await self._followups(session, period, add, breakdown)
        await self._surveys(session, period, add, breakdown)
        faults, subjects = await self._cases(session, period, dialect, add, breakdown)
        unreachable = await self._unreachable(session, period)
        report = Report(period, values, breakdowns, faults, subjects, unreachable)
        if weeks:
            report.weeks = await self.weekly(session, period, dialect, self.zone)
        return report

    # ---- follow-ups: timeliness and completeness ---------------------------------------------------------

    async def _followups(self, session: AsyncSession, period: Period, add: Any, breakdown: Any) -> None:
        # Those due in the period, and those completed in it that were due outside it: two ranges of two
        # covering indexes instead of one OR that would look every row up.
        columns = (
            FollowUp.id,
            FollowUp.kind,
            FollowUp.method,
            FollowUp.handled_by,
            FollowUp.terminal_id,
            FollowUp.ticket_id,
            FollowUp.status,
            FollowUp.window_end,
            FollowUp.completed_at,
        )
        due_in = _within(FollowUp.window_end, period)
        f = union_all(
            select(*columns).where(due_in),
            select(*columns).where(_within(FollowUp.completed_at, period), ~due_in),
        ).subquery("counted")
        due = and_(_within(f.c.window_end, period), f.c.status != "cancelled")
        on_time = and_(due, f.c.completed_at.is_not(None), f.c.completed_at <= f.c.window_end)
        done = and_(f.c.status == "completed", _within(f.c.completed_at, period))
        surveyed = exists().where(Submission.followup_id == f.c.id, Submission.status == "submitted")
        whole = and_(
            done,
            surveyed,
            f.c.method.is_not(None),
            or_(f.c.method != "phone", f.c.handled_by.is_not(None)),
            or_(f.c.kind.not_in(NEEDS_TERMINAL), f.c.terminal_id.is_not(None)),
            or_(f.c.kind.not_in(NEEDS_TICKET), f.c.ticket_id.is_not(None)),
        )
        query = (
            select(
                f.c.kind.label("kind"),
                f.c.method.label("method"),
                Staff.name.label("staff"),
                Terminal.model.label("model"),
                _count(due).label("due"),
                _count(on_time).label("on_time"),
                _count(done).label("done"),
                _count(whole).label("whole"),
            )
            .select_from(f)
            .outerjoin(Staff, Staff.telegram_user_id == f.c.handled_by)
            .outerjoin(Terminal, Terminal.id == f.c.terminal_id)
            .group_by(f.c.kind, f.c.method, Staff.name, Terminal.model)
        )
        rows = (await session.execute(query)).mappings().all()
        dims = {
            "staff": lambda r: r["staff"] or NONE,
            "role": lambda r: self._role_of_kind(r["kind"]),
            "kind": lambda r: r["kind"],
            "method": lambda r: r["method"] or NONE,
            "model": lambda r: r["model"] or NONE,
        }
        total, by = _rollup(rows, dims, ("due", "on_time", "done", "whole"))
        emit = _Emitter(add, breakdown, total, by)
        emit.rate("timeliness_rate", "on_time", "due")
        emit.rate("completeness_rate", "whole", "done")

    # ---- survey answers: satisfaction, average rating, NPS ------------------------------------------------

    async def _surveys(self, session: AsyncSession, period: Period, add: Any, breakdown: Any) -> None:
        said = cast(Answer.value, String)
        rating = and_(Answer.kind == "rating", said.in_(RATINGS))
        nps = and_(Answer.kind == "nps", said.in_(NPS_VALUES))
        # The satisfied, promoter and detractor values lie within the valid ones, so testing the kind
        # and the narrower list alone counts the same, with fewer tests per answer (a million of them).
        satisfied = and_(Answer.kind == "rating", said.in_(SATISFIED))
        # Each survey's scores first, its answers read in order from a covering index (no sort, no row
        # look-ups), then each survey joined once to who took it and on which terminal.
        in_period = (Submission.status == "submitted", _within(Submission.finished_at, period))
        surveys = select(Submission.id).where(*in_period)
        scores = (
            select(
                Answer.submission_id,
                _count(rating).label("ratings"),
                _count(satisfied).label("satisfied"),
                func.coalesce(func.sum(case((rating, cast(said, Integer)), else_=0)), 0).label("rating_sum"),
                _count(nps).label("nps"),
                _count(and_(Answer.kind == "nps", said.in_(PROMOTERS))).label("promoters"),
                _count(and_(Answer.kind == "nps", said.in_(DETRACTORS))).label("detractors"),
            )
            .where(Answer.kind.in_(("rating", "nps")), Answer.submission_id.in_(surveys))
            .group_by(Answer.submission_id)
            .subquery("scores")
        )
        sums = ("ratings", "satisfied", "rating_sum", "nps", "promoters", "detractors")
        query = (
            select(
                Submission.form_key.label("form"),
                Submission.method.label("method"),
                Staff.name.label("staff"),
                Terminal.model.label("model"),
                *(func.sum(scores.c[name]).label(name) for name in sums),
            )
            .select_from(scores)
            .join(Submission, Submission.id == scores.c.submission_id)
            .outerjoin(FollowUp, FollowUp.id == Submission.followup_id)
            .outerjoin(Staff, Staff.telegram_user_id == func.coalesce(Submission.operator_id, FollowUp.handled_by))
            .outerjoin(Terminal, Terminal.id == FollowUp.terminal_id)
            .where(*in_period)
            .group_by(Submission.form_key, Submission.method, Staff.name, Terminal.model)
        )
        rows = (await session.execute(query)).mappings().all()
        dims = {
            "staff": lambda r: r["staff"] or NONE,
            "role": lambda r: self._role_of_kind(self.kind_of_form.get(r["form"], r["form"])),
            "kind": lambda r: self.kind_of_form.get(r["form"], r["form"]),
            "method": lambda r: r["method"] or NONE,
            "model": lambda r: r["model"] or NONE,
        }
        total, by = _rollup(rows, dims, sums)
        emit = _Emitter(add, breakdown, total, by)
        emit.rate("satisfaction_rate", "satisfied", "ratings")
        emit.rate("average_rating", "rating_sum", "ratings", counts=False)

        def nps_of(sums: Mapping[str, float]) -> float | None:
            return nps_score(int(sums["promoters"]), int(sums["detractors"]), int(sums["nps"]))

        emit.value(
            "nps",
            nps_of,
            "nps",
            answers=int(total["nps"]),
            promoters=int(total["promoters"]),
            detractors=int(total["detractors"]),
        )

    # ---- cases: resolution, SLA, first response, complaints ----------------------------------------------

    async def _cases(
        self, session: AsyncSession, period: Period, dialect: str, add: Any, breakdown: Any
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # Those reported in the period, and those due in it that were reported before: the first from a
        # covering index, the second a few days' worth, instead of one OR that would look every row up.
        columns = (
            Ticket.kind,
            Ticket.status,
            Ticket.role,
            Ticket.assignee_id,
            Ticket.category,
            Ticket.terminal_id,
            Ticket.resolution_method,
            Ticket.created_at,
            Ticket.first_response_at,
            Ticket.respond_due_at,
            Ticket.sla_due_at,
            Ticket.resolved_at,
            Ticket.reopen_count,
        )
        created_in = _within(Ticket.created_at, period)
        t = union_all(
            select(*columns).where(created_in),
            select(*columns).where(_within(Ticket.sla_due_at, period), ~created_in),
        ).subquery("counted")
        reported = and_(t.c.kind == "repair", _within(t.c.created_at, period))
        resolved = and_(reported, t.c.status.in_(RESOLVED))
        remote = and_(resolved, t.c.resolution_method == "remote")
        sla_due = _within(t.c.sla_due_at, period)
        answered = func.coalesce(t.c.first_response_at, t.c.resolved_at)
        sla_met = and_(
            sla_due,
            t.c.resolved_at.is_not(None),
            t.c.resolved_at <= t.c.sla_due_at,
            or_(t.c.respond_due_at.is_(None), answered <= t.c.respond_due_at),
        )
        complaint = and_(t.c.kind == "complaint", _within(t.c.created_at, period))
        reopened = and_(complaint, t.c.reopen_count > 0)
        query = (
            select(
                t.c.role.label("role"),
                Staff.name.label("staff"),
                t.c.category.label("category"),
                Terminal.model.label("model"),
                _count(reported).label("reported"),
                _count(resolved).label("resolved"),
                _count(remote).label("remote"),
                _count(sla_due).label("sla_due"),
                _count(sla_met).label("sla_met"),
                _count(complaint).label("complaints"),
                _count(reopened).label("reopened"),
            )
            .select_from(t)
            .outerjoin(Staff, Staff.id == t.c.assignee_id)
            .outerjoin(Terminal, Terminal.id == t.c.terminal_id)
            .group_by(t.c.role, Staff.name, t.c.category, Terminal.model)
        )
        rows = (await session.execute(query)).mappings().all()
        dims = {
            "staff": lambda r: r["staff"] or NONE,
            "role": lambda r: r["role"] or NONE,
            "category": lambda r: r["category"] or NONE,
            "model": lambda r: r["model"] or NONE,
        }
        sums = ("reported", "resolved", "remote", "sla_due", "sla_met", "complaints", "reopened")
        total, by = _rollup(rows, dims, sums)
        emit = _Emitter(add, breakdown, total, by)
        emit.rate("resolution_rate", "resolved", "reported")
        emit.rate("remote_resolution_rate", "remote", "reported")
        emit.rate("sla_compliance_rate", "sla_met", "sla_due")
        add("complaints", int(total["complaints"]), None, None)
        emit.rate("complaint_reopen_rate", "reopened", "complaints")
        faults = [
            {"category": key, "count": int(sums["reported"])}
            for key, sums in sorted(by["category"].items(), key=lambda kv: (-kv[1]["reported"], kv[0]))
            if sums["reported"]
        ]
        await self._first_response(session, period, dialect, add, breakdown)
        return faults, await self._complaint_subjects(session, period)

    async def _first_response(
        self, session: AsyncSession, period: Period, dialect: str, add: Any, breakdown: Any
    ) -> None:
        """Median and 90th percentile (nearest rank) of the minutes to the first response, overall and by
        dimension, in one statement: the period's responded cases are read once (a CTE), each grouping
        numbers its rows in order, and only the two ranks wanted come back."""
        responded = (
            select(
                func.coalesce(Staff.name, NONE).label("staff"),
                func.coalesce(Ticket.role, NONE).label("role"),
                func.coalesce(Ticket.category, NONE).label("category"),
                func.coalesce(Terminal.model, NONE).label("model"),
                minutes_between(dialect, Ticket.first_response_at, Ticket.created_at).label("m"),
            )
            .select_from(Ticket)
            .outerjoin(Staff, Staff.id == Ticket.assignee_id)
            .outerjoin(Terminal, Terminal.id == Ticket.terminal_id)
            .where(_within(Ticket.created_at, period), Ticket.first_response_at.is_not(None))
            .cte("responded")
        )
        parts = []
        for dim in ("", "staff", "role", "category", "model"):
            group: Any = responded.c[dim] if dim else literal(NONE)
            within: Any = responded.c[dim] if dim else None
            # One window (one sort) gives both the rank and the group's size; only the two ranks wanted
            # go on to be grouped.
            ranked = select(
                group.label("g"),
                responded.c.m,
                func.row_number().over(partition_by=within, order_by=responded.c.m).label("rn"),
                func.count().over(partition_by=within, order_by=responded.c.m, rows=(None, None)).label("n"),
            ).subquery()
            median_rank, p90_rank = (ranked.c.n + 1) // 2, (9 * ranked.c.n + 9) // 10
            parts.append(
                select(
                    literal(dim).label("dim"),
                    ranked.c.g,
                    func.max(ranked.c.n),
                    func.max(case((ranked.c.rn == median_rank, ranked.c.m))),
                    func.max(case((ranked.c.rn == p90_rank, ranked.c.m))),
                )
                .where(or_(ranked.c.rn == median_rank, ranked.c.rn == p90_rank))
                .group_by(ranked.c.g)
            )
        found: dict[str, list[dict[str, Any]]] = {}
        for dim, key, count, median, p90 in (await session.execute(union_all(*parts))).all():
            if median is None or p90 is None:
                continue
            found.setdefault(dim, []).append(
                {
                    "key": key,
                    "value": round(float(median), 1),
                    "p90": round(float(p90), 1),
                    "numerator": int(count),
                    "denominator": int(count),
                }
            )
        overall = (found.pop("", None) or [{"value": None, "p90": None, "denominator": 0}])[0]
        add(
            "first_response_minutes_median",
            overall["value"],
            None,
            None,
            p90=overall["p90"],
            cases=overall["denominator"],
        )
        for dim, rows in found.items():
            breakdown(dim, "first_response_minutes_median", sorted(rows, key=lambda r: (-r["denominator"], r["key"])))

    async def _complaint_subjects(self, session: AsyncSession, period: Period) -> list[dict[str, Any]]:
        """Complaints by subject (their category) with what became of them, for root-cause analysis (001 §7(三)2)."""
        query = (
            select(
                Ticket.category,
                Ticket.agreed_outcome,
                func.count(Ticket.id),
                _count(Ticket.serious.is_(True)),
                _count(Ticket.reopen_count > 0),
                _count(Ticket.status.in_(RESOLVED)),
            )
            .where(Ticket.kind == "complaint", _within(Ticket.created_at, period))
            .group_by(Ticket.category, Ticket.agreed_outcome)
        )
        subjects: dict[str, dict[str, Any]] = {}
        for subject, outcome, count, serious, reopened, resolved in (await session.execute(query)).all():
            entry = subjects.setdefault(
                subject or NONE,
                {"subject": subject or NONE, "count": 0, "serious": 0, "reopened": 0, "resolved": 0, "outcomes": {}},
            )
            entry["count"] += int(count)
            entry["serious"] += int(serious)
            entry["reopened"] += int(reopened)
            entry["resolved"] += int(resolved)
            if outcome:
                entry["outcomes"][outcome] = entry["outcomes"].get(outcome, 0) + int(count)
        return sorted(subjects.values(), key=lambda e: (-e["count"], e["subject"]))

    async def _unreachable(self, session: AsyncSession, period: Period) -> int:
        """Merchants whose follow-up in the period reached neither the chat nor the phone."""
        query = select(func.count(func.distinct(FollowUp.merchant_id))).where(
            _within(FollowUp.window_end, period),
            or_(FollowUp.escalation_reason.in_(UNREACHED), FollowUp.outcome == "not_reached"),
        )
        return int((await session.execute(query)).scalar_one())

    # ---- the chart's trend ----------------------------------------------------------------------------------

    async def weekly(self, session: AsyncSession, period: Period, dialect: str, zone: ZoneInfo) -> list[dict[str, Any]]:
        """Satisfaction and timeliness week by week over the period (at least the last CHART_WEEKS weeks)."""
        # Whole weeks from Monday (local), the last one the period's own, at least CHART_WEEKS of them.
        last_day = (period.end - timedelta(microseconds=1)).astimezone(zone).date()
        last_monday = last_day - timedelta(days=last_day.weekday())
        first_monday = period.first - timedelta(days=period.first.weekday())
        count = max(CHART_WEEKS, (last_monday - first_monday).days // 7 + 1)
        start = datetime.combine(last_monday - timedelta(weeks=count - 1), datetime.min.time(), zone)
        span = Period(start, period.end, period.first, period.last)
        said = cast(Answer.value, String)
        rating = and_(Answer.kind == "rating", said.in_(RATINGS))
        week = week_index(dialect, Submission.finished_at, start)
        ratings = (
            select(week, _count(rating), _count(and_(Answer.kind == "rating", said.in_(SATISFIED))))
            .select_from(Answer)
            .join(Submission, Submission.id == Answer.submission_id)
            .where(Submission.status == "submitted", _within(Submission.finished_at, span), Answer.kind == "rating")
            .group_by(week)
        )
        due = FollowUp.status != "cancelled"
        on_time = and_(due, FollowUp.completed_at.is_not(None), FollowUp.completed_at <= FollowUp.window_end)
        fweek = week_index(dialect, FollowUp.window_end, start)
        timely = select(fweek, _count(due), _count(on_time)).where(_within(FollowUp.window_end, span)).group_by(fweek)
        weeks: list[dict[str, Any]] = [
            {"start": start + timedelta(weeks=i), "ratings": 0, "satisfied": 0, "due": 0, "on_time": 0}
            for i in range(count)
        ]
        for index, total, good in (await session.execute(ratings)).all():
            if index is not None and 0 <= int(index) < count:
                weeks[int(index)]["ratings"] += int(total)
                weeks[int(index)]["satisfied"] += int(good)
        for index, total, good in (await session.execute(timely)).all():
            if index is not None and 0 <= int(index) < count:
                weeks[int(index)]["due"] += int(total)
                weeks[int(index)]["on_time"] += int(good)
        for entry in weeks:
            entry["satisfaction_rate"] = ratio(entry["satisfied"], entry["ratings"])
            entry["timeliness_rate"] = ratio(entry["on_time"], entry["due"])
        return weeks


async def period_report(
    session: AsyncSession, policy: FollowUpPolicy, period: Period, *, weeks: bool = False
) -> Report:
    return await Indicators(policy).compute(session, period, weeks=weeks)
