"""The quality indicators of the follow-up plan (回访质量考核, documents 001 §6, §8) and their targets.

Pure: what each indicator means, which way is better, and whether a value meets its target. The
numbers are counted in SQL (`bot/services/indicators.py`); the targets come from the policy file's
`[report.targets]` (DOMAIN.md's defaults: 95 % timeliness, 98 % completeness, 90 % resolution, 90 %
satisfaction; the others are the project's choices, changed there by operations).

Definitions (a period is [start, end), its end never later than now):
- timeliness_rate: follow-ups whose window ended in the period (not cancelled) that were completed
  by their window end / those follow-ups. An answer by phone, recorded by staff, counts like one in
  the chat.
- completeness_rate: follow-ups completed in the period whose record is whole (a submitted survey,
  the method, the operator when by phone, the terminal for installation follow-ups, the case for
  post-repair and post-complaint ones) / follow-ups completed in the period.
- resolution_rate: repair cases reported in the period that are resolved or closed / reported.
- remote_resolution_rate: of those, resolved remotely (first contact, no visit) / reported.
- satisfaction_rate: survey ratings (1-5) of 4 or 5 / ratings, in surveys submitted in the period.
- average_rating: the mean of those ratings.
- nps: promoters (9-10) minus detractors (0-6), per cent of NPS answers (-100..100).
- first_response_minutes_median: minutes from a case being reported to staff's first response
  (wall-clock, the merchant's wait), median (nearest rank); the 90th percentile goes along.
- sla_compliance_rate: cases whose resolution deadline fell in the period that were answered and
  resolved by their deadlines / those cases.
- complaints: complaints received in the period; the target is a ceiling per 30 days, scaled to the
  period's length.
- complaint_reopen_rate: complaints received in the period reopened at least once / those complaints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Better = Literal["higher", "lower"]

# The report's indicators, in the order the report shows them (the JSON keys of `posbot report`).
INDICATORS: tuple[str, ...] = (
    "timeliness_rate",
    "completeness_rate",
    "resolution_rate",
    "remote_resolution_rate",
    "satisfaction_rate",
    "average_rating",
    "nps",
    "first_response_minutes_median",
    "sla_compliance_rate",
    "complaints",
    "complaint_reopen_rate",
)
LOWER_IS_BETTER = frozenset({"first_response_minutes_median", "complaints", "complaint_reopen_rate"})
RATES = frozenset(name for name in INDICATORS if name.endswith("_rate"))
# The dimensions a breakdown can take. Merchants carry no region (nor city) in this schema, so there is
# no region breakdown: the report says so instead of inventing one.
DIMENSIONS = ("staff", "role", "category", "model", "method", "kind")
MISSING_DIMENSIONS = ("region",)

SATISFIED_AT_LEAST = 4  # a rating of 4 or 5 is a satisfied answer
PROMOTER_AT_LEAST = 9  # NPS 9-10 promote; 0-6 detract
DETRACTOR_AT_MOST = 6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Targets(_Strict):
    timeliness_rate: float = Field(default=0.95, ge=0, le=1)
    completeness_rate: float = Field(default=0.98, ge=0, le=1)
    resolution_rate: float = Field(default=0.90, ge=0, le=1)
    remote_resolution_rate: float = Field(default=0.50, ge=0, le=1)
    satisfaction_rate: float = Field(default=0.90, ge=0, le=1)
    average_rating: float = Field(default=4.5, ge=1, le=5)
    nps: float = Field(default=30, ge=-100, le=100)
    first_response_minutes_median: float = Field(default=60, gt=0)
    sla_compliance_rate: float = Field(default=0.90, ge=0, le=1)
    complaints_per_30_days: float = Field(default=10, ge=0)
    complaint_reopen_rate: float = Field(default=0.10, ge=0, le=1)


class WeeklyPost(_Strict):
    """The report posted to the staff group by itself: once a week, at this weekday and time (staff's zone)."""

    enabled: bool = True
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    at: time = time(9, 0)


class ReportPolicy(_Strict):
    targets: Targets = Targets()
    weekly: WeeklyPost = WeeklyPost()


@dataclass(frozen=True)
class Indicator:
    """One indicator's value against its target; `value` None when nothing in the period counts."""

    name: str
    value: float | None
    target: float
    numerator: float | None = None
    denominator: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def better(self) -> Better:
        return "lower" if self.name in LOWER_IS_BETTER else "higher"

    @property
    def met(self) -> bool | None:
        """Met or missed; None when there is nothing to judge (no follow-up due, no case reported)."""
        if self.value is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target


def target_for(targets: Targets, name: str, days: float) -> float:
    """The target of `name` for a period of `days`: complaints' ceiling scales with the period."""
    if name == "complaints":
        return round(targets.complaints_per_30_days * days / 30, 1)
    value: float = getattr(targets, name)
    return value


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    if not denominator:
        return None
    return (numerator or 0) / denominator


def nps_score(promoters: int, detractors: int, answers: int) -> float | None:
    if not answers:
        return None
    return round(100 * (promoters - detractors) / answers, 1)


def nearest_rank(count: int, numerator: int, denominator: int) -> int:
    """The 1-based rank of the p-th percentile (p = numerator/denominator) among `count` sorted values:
    ceil(p * count), at least 1. Integer arithmetic, so SQL can compute the same."""
    return max(1, (numerator * count + denominator - 1) // denominator)
