"""The report as people read it: one localized text, the same in the terminal (`posbot report`) and in
the staff group (`/report`, the weekly post). Short enough for one Telegram message."""

from __future__ import annotations

from typing import Any

from bot.domain.indicators import INDICATORS, RATES, Indicator
from bot.i18n import Translator, catalog
from bot.services.indicators import Report

# Breakdowns the text shows (the JSON has them all): who and which role, the channel, the terminal.
TEXT_BREAKDOWNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("role", ("timeliness_rate", "satisfaction_rate", "resolution_rate")),
    ("method", ("timeliness_rate", "satisfaction_rate")),
    ("staff", ("resolution_rate", "first_response_minutes_median", "sla_compliance_rate")),
    ("model", ("resolution_rate",)),
)
BREAKDOWN_LINES = 8  # per dimension, the biggest groups first


def value_text(t: Translator, name: str, value: float | None) -> str:
    if value is None:
        return t("report.no_data")
    if name in RATES:
        return f"{value * 100:.1f}%"
    if name == "average_rating":
        return f"{value:.2f}"
    if name == "first_response_minutes_median":
        return t("report.minutes", value=f"{value:.0f}")
    if name == "nps":
        return f"{value:+.0f}"
    return f"{value:g}"


def key_text(t: Translator, dim: str, key: str) -> str:
    """A group's name in the reader's language: a role, a follow-up kind, a fault, a subject, a method."""
    if not key:
        return t("report.none")
    names = {
        "role": f"role.{key}",
        "kind": f"followup.kind.{key}",
        "category": f"form.repair.category.{key}",
        "method": f"report.method.{key}",
        "subject": f"form.complaint.subject.{key}",
        "outcome": f"complaint_desk.outcome.{key}",
    }
    wanted = names.get(dim)
    if wanted is not None and wanted in catalog(t.locale):
        return t(wanted)
    if dim == "category" and f"form.complaint.subject.{key}" in catalog(t.locale):
        return t(f"form.complaint.subject.{key}")
    return key


def indicator_line(t: Translator, indicator: Indicator) -> str:
    mark = {True: "met", False: "missed", None: "unknown"}[indicator.met]
    counts = ""
    if indicator.numerator is not None and indicator.denominator:
        counts = t("report.counts", numerator=indicator.numerator, denominator=indicator.denominator)
    line = t(
        "report.line",
        mark=t(f"report.mark.{mark}"),
        name=t(f"report.name.{indicator.name}"),
        value=value_text(t, indicator.name, indicator.value),
        counts=counts,
        op=t(f"report.op.{indicator.better}"),
        target=value_text(t, indicator.name, indicator.target),
    )
    p90 = indicator.extra.get("p90")
    if p90 is not None:
        line += t("report.p90", value=value_text(t, indicator.name, p90))
    return line


def render(report: Report, t: Translator) -> str:
    period = report.period
    lines = [t("report.title", first=period.first.isoformat(), last=period.last.isoformat()), ""]
    lines += [indicator_line(t, report.indicators[name]) for name in INDICATORS]
    separator = t.raw("list_separator")
    if report.faults:
        faults = [f"{key_text(t, 'category', f['category'])} {f['count']}" for f in report.faults]
        lines += ["", t("report.faults", items=separator.join(faults))]
    if report.complaint_subjects:
        lines += ["", t("report.subjects")]
        for subject in report.complaint_subjects:
            outcomes = separator.join(
                f"{key_text(t, 'outcome', k)} {v}" for k, v in sorted(subject["outcomes"].items())
            )
            lines.append(
                t(
                    "report.subject_line",
                    subject=key_text(t, "subject", subject["subject"]),
                    count=subject["count"],
                    serious=subject["serious"],
                    reopened=subject["reopened"],
                    resolved=subject["resolved"],
                    outcomes=outcomes or t("report.none"),
                )
            )
    lines += ["", t("report.unreachable", count=report.unreachable_merchants)]
    for dim, names in TEXT_BREAKDOWNS:
        section = _breakdown(t, report, dim, names)
        if section:
            lines += ["", t("report.by", dimension=t(f"report.dimension.{dim}")), *section]
    lines += ["", t("report.region_missing")]
    return "\n".join(lines)


def _breakdown(t: Translator, report: Report, dim: str, names: tuple[str, ...]) -> list[str]:
    tables = report.breakdowns.get(dim, {})
    keys: list[str] = []
    for name in names:
        for found in tables.get(name, []):
            if found["key"] not in keys:
                keys.append(found["key"])
    lines = []
    for key in keys[:BREAKDOWN_LINES]:
        parts = []
        for name in names:
            row: dict[str, Any] | None = next((r for r in tables.get(name, []) if r["key"] == key), None)
            if row is not None:
                parts.append(f"{t(f'report.short.{name}')} {value_text(t, name, row['value'])}")
        lines.append(t("report.by_line", group=key_text(t, dim, key), figures=t.raw("list_separator").join(parts)))
    return lines
