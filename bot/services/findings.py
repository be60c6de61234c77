"""Survey findings become cases: what a merchant said that a person must look into.

When a submitted survey meets one of the policy's finding rules (`[desk] findings`,
bot/domain/findings.py), one case is opened for the role its follow-up is routed to,
quoting every answer that met a rule, in the staff group's language. Under the case,
"Open a repair ticket for the merchant" turns a finding about a broken terminal into a
repair case with the same lifecycle, linked both ways in the audit trail.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import CallbackData, FindingAction
from bot.dialogs.engine import Text, describe
from bot.dialogs.loader import FormRegistry
from bot.dialogs.schema import Form
from bot.domain.findings import FindingRule, findings_in, worst_severity
from bot.domain.followup_policy import FollowUpPolicy, PolicyError
from bot.i18n import Translator
from bot.services.cases import CaseDesk
from bot.services.registry import Registry
from bot.services.render import text_payload
from bot.services.team import Team
from bot.services.turn import Member, StaffAction, Turn
from bot.services.updates import UpdateWork
from bot.storage.models import FollowUp, Merchant, Submission, Terminal, Ticket, TicketEvent

log = logging.getLogger("posbot.findings")


class Findings:
    def __init__(
        self, cases: CaseDesk, team: Team, forms: FormRegistry, policy: FollowUpPolicy, *, locale: str
    ) -> None:
        self.cases = cases
        self.team = team
        self.forms = forms
        self.routing = policy.desk.routing
        self.rules = policy.desk.findings
        self.t = Translator(locale)  # the staff group's language
        for rule in self.rules:
            _check(rule, forms)

    def register(self, registry: Registry) -> None:
        registry.on_submitted(self.on_submitted)
        registry.staff_button(FindingAction, self.team.button(self.open_repair))
        self.cases.tool("finding", self.repair_button)

    # ---- a survey submitted ------------------------------------------------------------------------------

    async def on_submitted(self, turn: Turn, form: Form, submission: Submission, answers: dict[str, Any]) -> None:
        met = findings_in(self.rules, form.key, answers)
        if not met or submission.merchant_id is None:
            return
        session = turn.session
        merchant = await session.get(Merchant, submission.merchant_id)
        followup = await session.get(FollowUp, submission.followup_id) if submission.followup_id else None
        terminal = await session.get(Terminal, followup.terminal_id) if followup and followup.terminal_id else None
        kind = followup.kind if followup is not None else form.key
        ticket = Ticket(
            kind="finding",
            status="new",
            merchant_id=submission.merchant_id,
            telegram_user_id=merchant.telegram_user_id if merchant else None,
            terminal_id=terminal.id if terminal else None,
            serial=terminal.serial if terminal else None,
            unverified=False,
            severity=worst_severity(met),
            role=self.routing.role_for(kind),
            quote=self.quote(form, met, answers),
            followup_id=followup.id if followup else None,
            submission_id=submission.id,
            created_at=turn.now,
            reopen_count=0,
        )
        phoned = submission.method == "phone"
        actor = f"staff:{submission.operator_id}" if phoned else f"merchant:{turn.conversation.telegram_user_id}"
        detail = {
            "reasons": sorted({r.reason for r in met}),
            "questions": sorted({r.question for r in met}),
            "submission": submission.id,
            "method": submission.method,
        }
        await self.cases.open(turn.work, ticket, actor=actor, detail=detail)

    def quote(self, form: Form, met: list[FindingRule], answers: dict[str, Any]) -> str:
        """Each answer that met a rule, once, with why it matters, and what the merchant added after it."""
        reasons: dict[str, list[str]] = {}
        details: list[str] = []
        for rule in met:
            named = reasons.setdefault(rule.question, [])
            reason = self.t(f"findings.reason.{rule.reason}")
            if reason not in named:
                named.append(reason)
            if rule.detail and answers.get(rule.detail) is not None and rule.detail not in details:
                details.append(rule.detail)
        lines = [
            self.t("findings.quote_line", reason=" / ".join(named), answer=self._answer(form, question, answers))
            for question, named in reasons.items()
        ]
        lines += [self.t("findings.detail_line", answer=self._answer(form, key, answers)) for key in details]
        return "\n".join(lines)

    def _answer(self, form: Form, key: str, answers: dict[str, Any]) -> str:
        step = form.step(key)
        return self.t.text(
            Text(
                "dialog.summary_line",
                {"label": Text(step.label_key(form.key)), "answer": describe(form, step, answers.get(key))},
            )
        ).removeprefix("• ")

    async def repair_button(self, session: AsyncSession, finding: Ticket) -> list[tuple[str, CallbackData]]:
        """On a finding's case message, until a repair ticket has been opened from it."""
        if finding.merchant_id is None or finding.id is None or await self._repair_of(session, finding) is not None:
            return []
        return [(self.t("findings.button.repair"), FindingAction(finding.id, "repair"))]

    # ---- open a repair ticket from a finding ---------------------------------------------------------------

    async def open_repair(self, done: UpdateWork, action: StaffAction, member: Member, data: FindingAction) -> None:
        session = done.session
        finding = await session.get(Ticket, data.ticket_id)
        if finding is None or finding.kind != "finding" or finding.merchant_id is None:
            done.callback_text = self.t("error.stale_button")
            return
        already = await self._repair_of(session, finding)
        if already is not None:
            done.callback_text, done.alert = self.t("findings.repair_exists", number=already), True
            return
        merchant = await session.get(Merchant, finding.merchant_id)
        terminal_id, serial = finding.terminal_id, finding.serial
        if terminal_id is None and merchant is not None:
            await session.refresh(merchant, ["terminals"])
            if len(merchant.terminals) == 1:  # one terminal: it is the one
                terminal_id, serial = merchant.terminals[0].id, merchant.terminals[0].serial
        repair = Ticket(
            kind="repair",
            status="new",
            merchant_id=finding.merchant_id,
            telegram_user_id=finding.telegram_user_id,
            terminal_id=terminal_id,
            serial=serial,
            unverified=False,
            severity=finding.severity,
            description=finding.quote,
            contact_phone=merchant.phone if merchant else None,
            followup_id=finding.followup_id,
            created_at=done.now,
            reopen_count=0,
        )
        actor = f"staff:{member.user_id}"
        await self.cases.open(done, repair, actor=actor, detail={"finding": finding.number, "finding_id": finding.id})
        session.add(
            TicketEvent(
                ticket_id=finding.id,
                at=done.now,
                actor=actor,
                action="repair_opened",
                detail={"repair": repair.number, "repair_id": repair.id},
            )
        )
        await self.cases.tell_merchant(done, repair, "findings.tell.repair_opened")
        await session.flush()
        await self.cases.post(done, finding)  # the finding's button gives way: the repair is open
        text = self.t("findings.repair_opened", finding=finding.number, repair=repair.number, who=member.name)
        done.say(action.chat_id, text_payload(text), purpose="staff", ticket_id=finding.id)
        done.callback_text = self.t("findings.repair_opened_toast", number=repair.number)

    async def _repair_of(self, session: AsyncSession, finding: Ticket) -> str | None:
        found = await session.execute(
            select(TicketEvent.detail).where(TicketEvent.ticket_id == finding.id, TicketEvent.action == "repair_opened")
        )
        detail = found.scalars().first()
        return str(detail.get("repair")) if detail else None


def _check(rule: FindingRule, forms: FormRegistry) -> None:
    """A rule that names a form or question that does not exist would never fire: stop start-up instead."""
    try:
        form = forms.latest(rule.form)
    except KeyError:
        raise PolicyError(f"desk.findings: no form {rule.form!r}") from None
    for key in (rule.question, rule.detail):
        if key is None:
            continue
        try:
            form.step(key)
        except KeyError:
            raise PolicyError(f"desk.findings: form {rule.form!r} has no question {key!r}") from None
