"""Survey findings: answers that a person must look into (000 §2.4, 001 §3(五)).

A low rating, a detractor's NPS, a terminal "not working" at the installation check, a fault
found in a review, a request for training or more terminals: each is one rule in the policy
file (`[desk] findings`), naming the form, the question and the test the answer fails. The
rules live with the routing they feed, where operations change thresholds without a release.
Pure: answers in, the rules they meet out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from bot.domain.cases import SEVERITIES, Severity

# Why a finding was opened; each has a text in locales (findings.reason.<reason>).
Reason = Literal["low_rating", "low_nps", "not_working", "fault", "needs_training", "needs_devices"]


class FindingRule(BaseModel):
    """`form.question` meets the rule when its answer is at most `at_most` (ratings, NPS), equals
    `equals` (yes/no, a choice) or holds any of `any_of` (multi-choice, choice). `detail` names a
    question quoted along with it (the "what is wrong" that follows a "no")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    form: str
    question: str
    reason: Reason
    at_most: int | None = None
    equals: bool | str | None = None
    any_of: tuple[str, ...] = ()
    detail: str | None = None
    severity: Severity = "normal"

    @model_validator(mode="after")
    def _one_test(self) -> FindingRule:
        tests = [self.at_most is not None, self.equals is not None, bool(self.any_of)]
        if sum(tests) != 1:
            raise ValueError("a finding rule takes exactly one of at_most, equals, any_of")
        return self

    def met_by(self, answer: Any) -> bool:
        if answer is None:
            return False  # skipped: nothing was said
        if self.at_most is not None:
            return isinstance(answer, int | float) and not isinstance(answer, bool) and answer <= self.at_most
        if self.equals is not None:
            return type(answer) is type(self.equals) and answer == self.equals
        values = answer if isinstance(answer, list | tuple) else [answer]
        return any(v in self.any_of for v in values)


def findings_in(rules: Iterable[FindingRule], form_key: str, answers: Mapping[str, Any]) -> list[FindingRule]:
    """The rules of `form_key` that these answers meet, in policy order."""
    return [r for r in rules if r.form == form_key and r.met_by(answers.get(r.question))]


def worst_severity(rules: Iterable[FindingRule]) -> Severity:
    """The most pressing severity among the rules met (urgent before partial before normal)."""
    found = {r.severity for r in rules}
    return next((s for s in SEVERITIES if s in found), "normal")


def _rule(form: str, question: str, reason: Reason, **test: Any) -> FindingRule:
    return FindingRule(form=form, question=question, reason=reason, **test)


_RATINGS = {
    "install_first": ("training",),
    "install_second": ("satisfaction",),
    "routine": ("attitude", "response_speed", "problem_solving"),
    "key_account": ("satisfaction",),
    "post_repair": ("satisfaction",),
    "post_complaint": ("handling_speed", "staff_attitude"),
}

# The defaults the packaged policy file spells out; a policy copy without `findings` gets these.
DEFAULT_FINDINGS: tuple[FindingRule, ...] = (
    _rule("install_first", "working", "not_working", equals=False, detail="problem", severity="urgent"),
    *(_rule(form, q, "low_rating", at_most=2) for form, questions in _RATINGS.items() for q in questions),
    _rule("routine", "recommend", "low_nps", at_most=6),
    _rule("routine", "maintenance_issue", "fault", equals=True, detail="maintenance_detail"),
    _rule("key_account", "maintenance_ok", "fault", equals=False, detail="maintenance_detail"),
    *(
        _rule(form, "needs", reason, any_of=values)
        for form in ("install_first", "install_second")
        for reason, values in (("needs_training", ("training",)), ("needs_devices", ("more_devices", "upgrade")))
    ),
)
