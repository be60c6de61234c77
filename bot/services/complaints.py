"""Complaints (投诉): heard in a dialogue, opened as a case for the department that owns the subject.

A merchant files one with `/complaint`, or from the button offered after a low survey rating.
The complaint form (`forms/complaint.yaml`) records the subject, what happened, when, who, the
evidence, the outcome wanted and a contact. Submitted, it becomes a `C-` case: routed by subject
([desk.complaints.routing]), answered within N working days ([desk.complaints]), and when the
subject is serious, posted with the supervisors mentioned by name so Telegram notifies them at once.
The merchant is told the case number and the date the answer is due, in their language.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.delivery.callbacks import ComplaintOffer
from bot.dialogs.schema import Form, Kind
from bot.domain.sla import deadlines, end_of_working_day
from bot.i18n import Translator
from bot.services.cases import CaseDesk
from bot.services.dialogues import Dialogues
from bot.services.registry import Registry
from bot.services.render import REMOVE_KEYBOARD, inline_keyboard, local_day, local_minute, text_payload
from bot.services.turn import Turn
from bot.storage.models import Submission, Ticket

log = logging.getLogger("posbot.complaints")

FORM = "complaint"


class Complaints:
    def __init__(self, dialogues: Dialogues, cases: CaseDesk, zone: ZoneInfo) -> None:
        self.dialogues = dialogues
        self.cases = cases
        self.policy = cases.desk.complaints
        self.zone = zone

    def register(self, registry: Registry) -> None:
        registry.command("complaint", self.file)
        registry.outcome("complaint_case", self.open_case)
        registry.on_submitted(self.offer_after_low_rating)
        registry.button(ComplaintOffer, self.from_offer)
        self.cases.deadline_rules["complaint"] = self.deadlines
        self.cases.facts["complaint"] = self.facts

    # ---- filing ----------------------------------------------------------------------------------------

    async def file(self, turn: Turn) -> None:
        await self.dialogues.offer_form(turn, FORM)

    async def from_offer(self, turn: Turn, data: ComplaintOffer) -> None:
        survey = await turn.session.get(Submission, data.submission_id)
        if survey is None or survey.telegram_user_id != turn.conversation.telegram_user_id:
            turn.stale_button()
            return
        await self.dialogues.offer_form(turn, FORM)

    async def offer_after_low_rating(
        self, turn: Turn, form: Form, submission: Submission, answers: dict[str, Any]
    ) -> None:
        """A survey the merchant answered in the chat with a rating at or below the policy's line: a way to
        complain is one button away (a rating recorded by staff on the phone offers nothing to the merchant)."""
        if submission.followup_id is None or submission.method == "phone" or form.key in self.policy.no_offer_after:
            return
        low = [
            step.key
            for step in form.steps
            if step.kind is Kind.RATING
            and isinstance(answers.get(step.key), int)
            and answers[step.key] <= self.policy.offer_at_rating
        ]
        if not low:
            return
        button = [[(turn.t("complaints.offer.button"), ComplaintOffer(submission.id))]]
        text = turn.t("complaints.offer.text", days=self.policy.answer_working_days)
        turn.say(text_payload(text, inline_keyboard(button)))

    # ---- the case ----------------------------------------------------------------------------------------

    async def open_case(self, turn: Turn, form: Form, submission: Submission, answers: dict[str, Any]) -> None:
        merchant = await turn.merchant()
        subject = answers.get("subject")
        serious = self.policy.is_serious(subject)
        ticket = Ticket(
            kind="complaint",
            status="new",
            merchant_id=merchant.id if merchant else None,
            telegram_user_id=turn.conversation.telegram_user_id,
            unverified=merchant is None,
            category=subject,
            severity="normal",
            role=self.policy.role_for(subject),
            description=self._description(answers),
            contact_phone=answers.get("phone"),
            outcome_wanted=answers.get("outcome_wanted"),
            serious=serious,
            submission_id=submission.id,
            created_at=turn.now,
            reopen_count=0,
        )
        detail = {
            "submission": submission.id,
            "subject": subject,
            "outcome_wanted": ticket.outcome_wanted,
            "role": ticket.role,
            "serious": serious,
        }
        actor = f"merchant:{turn.conversation.telegram_user_id}"
        await self.cases.open(turn.work, ticket, actor=actor, detail=detail, evidence_from=submission.id)
        if serious:
            await self._call_supervisors(turn, ticket)
        self._tell_merchant(turn, ticket)

    def deadlines(self, ticket: Ticket, opened_at: datetime) -> tuple[datetime, datetime]:
        """First response as the SLA has it for the severity; the answer by the end of the N-th working day
        (and never before the end of the day the response is due)."""
        calendar, hours = self.cases.calendar, self.cases.desk.working_hours
        respond_by = deadlines(self.cases.desk, calendar, ticket.severity, opened_at).respond_by
        answer_by = end_of_working_day(calendar, hours, opened_at, self.policy.answer_working_days)
        return respond_by, max(answer_by, calendar.at(respond_by.astimezone(calendar.zone).date(), hours.end))

    def facts(self, t: Translator, ticket: Ticket) -> list[str]:
        """The subject and the outcome the merchant wants, on the case message."""
        lines = []
        if ticket.category:
            lines.append(t("complaints.case.subject", subject=t(f"form.complaint.subject.{ticket.category}")))
        if ticket.outcome_wanted:
            wanted = t(f"form.complaint.outcome_wanted.{ticket.outcome_wanted}")
            lines.append(t("complaints.case.outcome_wanted", outcome=wanted))
        return lines

    def _description(self, answers: dict[str, Any]) -> str:
        """What happened, with when and who, in the staff group's language (the answers stay on the submission)."""
        t = self.cases.t
        lines = [str(answers.get("what_happened") or "").strip()]
        when = answers.get("happened_at")
        if when:
            at = local_minute(datetime.fromisoformat(when), self.zone)
            lines.append(t("complaints.case.when", at=at))
        if answers.get("people"):
            lines.append(t("complaints.case.who", people=str(answers["people"]).strip()))
        return "\n".join(line for line in lines if line)

    async def _call_supervisors(self, turn: Turn, ticket: Ticket) -> None:
        """The case message is headed by the supervisors' names, mentioned, so each is notified at once."""
        if ticket.case_outbox_id is None:  # no staff group to post in (logged by the desk)
            return
        await self.cases.escalate(turn.work, ticket, [], key="complaints.case.serious", again=False)

    def _tell_merchant(self, turn: Turn, ticket: Ticket) -> None:
        due = local_day(ticket.sla_due_at, self.zone) if ticket.sla_due_at else ""
        lines = [turn.t("complaints.created", number=ticket.number, due=due)]
        if ticket.serious:
            lines.append(turn.t("complaints.created_serious"))
        turn.say(text_payload("\n".join(lines), REMOVE_KEYBOARD))
