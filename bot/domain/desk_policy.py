"""The staff desk's part of the policy file (`[desk]`): warranty, staff hours, SLA, routing, authority.

Every number is the project's default for a gap the documents leave open (DOMAIN.md); operations
change them in the policy file. A policy copy without a `[desk]` section gets these defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.domain.cases import PERMISSIONS, SUPERVISOR_ONLY, Role, Severity
from bot.domain.findings import DEFAULT_FINDINGS, FindingRule


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkingHours(_Strict):
    """When staff work: SLA time runs only inside these hours (the merchants' quiet hours are wider)."""

    start: time = time(9, 0)
    end: time = time(18, 0)

    @model_validator(mode="after")
    def _order(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class SlaRule(_Strict):
    respond_minutes: int = Field(ge=1, le=10 * 24 * 60)  # working minutes to the first response
    resolve_working_days: int = Field(ge=0, le=60)  # 0: by the end of the same working day


class Sla(_Strict):
    urgent: SlaRule = SlaRule(respond_minutes=30, resolve_working_days=0)
    partial: SlaRule = SlaRule(respond_minutes=120, resolve_working_days=1)
    normal: SlaRule = SlaRule(respond_minutes=240, resolve_working_days=3)

    def rule(self, severity: Severity) -> SlaRule:
        rule: SlaRule = getattr(self, severity)
        return rule


class Routing(_Strict):
    """Which role a kind of work goes to: a follow-up kind, and the cases its findings open."""

    install_first: Role = "sales"
    install_second: Role = "sales"
    repair: Role = "aftersales"
    key_account: Role = "aftersales"
    routine: Role = "service"
    complaint: Role = "service"

    def role_for(self, kind: str) -> Role:
        """Customer service is the front desk: work of a kind the policy does not name lands there."""
        role: Role = getattr(self, kind) if kind in Routing.model_fields else "service"
        return role


# Which role owns a complaint, by its subject (001 §7: the responsible department investigates).
COMPLAINT_ROUTING: dict[str, Role] = {
    "slow_response": "service",
    "application_rejected": "sales",
    "terminal_fault": "aftersales",
    "unreasonable_fees": "sales",
    "staff_attitude": "service",
    "transaction_security": "supervisor",
    "other": "service",
}


class ComplaintPolicy(_Strict):
    """Complaints (投诉): the answer deadline, the department by subject, and what goes to supervisors at once."""

    answer_working_days: int = Field(default=3, ge=0, le=60)  # answered by the end of the N-th working day
    # The policy file names the subjects it changes; the others keep their default route.
    routing: dict[str, Role] = Field(default_factory=lambda: dict(COMPLAINT_ROUTING))
    serious: frozenset[str] = frozenset({"staff_attitude", "transaction_security"})  # supervisors at once
    offer_at_rating: int = Field(default=2, ge=0, le=5)  # a survey rating at or below this offers a complaint
    no_offer_after: frozenset[str] = frozenset({"post_complaint"})  # its "not satisfied" reopens the case

    @field_validator("routing", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        return {**COMPLAINT_ROUTING, **value} if isinstance(value, Mapping) else value

    def role_for(self, subject: str | None) -> Role:
        """Customer service is the front desk: a subject the policy does not route lands there."""
        return self.routing.get(subject or "", "service")

    def is_serious(self, subject: str | None) -> bool:
        return subject in self.serious


class DeskPolicy(_Strict):
    warranty_days: int = Field(default=90, ge=0, le=3650)  # warranty after a repair
    warn_at: float = Field(default=0.8, gt=0, lt=1)  # share of the SLA time after which staff are warned
    working_hours: WorkingHours = WorkingHours()
    sla: Sla = Sla()
    routing: Routing = Routing()
    supervisor_only: frozenset[str] = SUPERVISOR_ONLY
    findings: tuple[FindingRule, ...] = DEFAULT_FINDINGS  # survey answers that open a case
    complaints: ComplaintPolicy = ComplaintPolicy()

    @field_validator("supervisor_only")
    @classmethod
    def _known(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - set(PERMISSIONS))
        if unknown:
            raise ValueError(f"unknown permission {unknown[0]!r}; known: {', '.join(PERMISSIONS)}")
        return value
