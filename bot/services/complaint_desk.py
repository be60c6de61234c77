"""Working a complaint from the staff group until the merchant is satisfied (documents 001 §7, 004).

A complaint's case message carries, beside the lifecycle's buttons, the tools of a complaint:
ask the merchant a question (relayed by the bot; their next message comes back under the case),
propose a solution of a kind (replacement, refund, explanation, apology, other) which the merchant
accepts (resolved, the outcome agreed) or rejects (still open, the supervisors called), set the
date a complex case is expected by (the merchant is told), and mark it serious (the supervisors
called at once). A merchant who is still not satisfied after the follow-up reopens it; the second
time, the supervisors are called too. Everything lands in the case's audit trail.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time
from typing import Any, get_args

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import CallbackData, ComplaintAnswer, ComplaintOutcome, ComplaintWork
from bot.domain.cases import InvalidTransition, canonical_state, is_open, next_state
from bot.domain.privacy import mask_numbers
from bot.domain.sla import end_of_working_day
from bot.i18n import Translator
from bot.services.cases import CaseDesk, PromptAnswer
from bot.services.dialogues import Dialogues
from bot.services.registry import Registry
from bot.services.render import inline_keyboard, local_day, text_payload
from bot.services.turn import Member, StaffAction, Turn
from bot.services.updates import UpdateWork
from bot.storage.models import Conversation, OutboxMessage, Staff, Ticket, TicketEvent

log = logging.getLogger("posbot.complaint_desk")

OUTCOMES: tuple[ComplaintOutcome, ...] = get_args(ComplaintOutcome)
# Desk prompts answered by a staff reply (purpose "ask:<what>", at most 24 characters in all).
ASK = "cw_ask"
DATE = "cw_date"
PROPOSE = "cw_p_"  # + the outcome
TEXT_MAX = 1000
DAY = re.compile(r"(?:(\d{4})-)?(\d{1,2})-(\d{1,2})")


def resolvable(ticket: Ticket) -> bool:
    """Whether the case may be resolved now (taken, not new nor done): what accepting a solution does."""
    try:
        next_state(ticket.status, "resolve_remote")
    except InvalidTransition:
        return False
    return True


class ComplaintDesk:
    def __init__(self, cases: CaseDesk, dialogues: Dialogues) -> None:
        self.cases = cases
        self.dialogues = dialogues
        self.t = cases.t  # the staff group's language
        self.zone = cases.zone

    def register(self, registry: Registry) -> None:
        team = self.cases.team
        registry.staff_button(ComplaintWork, team.button(self.press))
        registry.button(ComplaintAnswer, self.answer_proposal)
        registry.on_input(self.merchant_answers)  # before the dialogues: it takes text only when a question waits
        self.cases.tool("complaint", self.buttons)
        self.cases.detail("complaint", self.lines)
        self.cases.on_reopened.append(self.reopened)
        self.cases.prompt(ASK, self._question)
        self.cases.prompt(DATE, self._expected)
        for outcome in OUTCOMES:
            self.cases.prompt(PROPOSE + outcome, self._proposal_of(outcome))

    # ---- the case message ----------------------------------------------------------------------------------

    async def buttons(self, session: AsyncSession, ticket: Ticket) -> list[tuple[str, CallbackData]]:
        """The complaint's tools, while it is open; "mark serious" until it is."""
        if ticket.id is None or not is_open(ticket.status):
            return []
        # A solution is proposed once someone has the case: accepting it resolves the case.
        actions = [
            "ask",
            *(["propose"] if resolvable(ticket) else []),
            "expect",
            *([] if ticket.serious else ["serious"]),
        ]
        return [(self.t(f"complaint_desk.button.{a}"), ComplaintWork(ticket.id, a)) for a in actions]  # type: ignore[arg-type]

    async def lines(self, session: AsyncSession, ticket: Ticket) -> list[str]:
        t = self.t
        found: list[str] = []  # "serious" is the desk's own line, for every kind of case
        if ticket.expected_at is not None:
            found.append(t("complaint_desk.case.expected", date=self._day(ticket.expected_at)))
        if ticket.question:
            found.append(t("complaint_desk.case.question", text=mask_numbers(ticket.question)))
        if ticket.proposal and ticket.proposed_outcome and is_open(ticket.status):
            outcome = t(f"complaint_desk.outcome.{ticket.proposed_outcome}")
            found.append(t("complaint_desk.case.proposal", outcome=outcome, text=mask_numbers(ticket.proposal)))
        if ticket.agreed_outcome:
            found.append(t("complaint_desk.case.agreed", outcome=t(f"complaint_desk.outcome.{ticket.agreed_outcome}")))
        return found

    # ---- staff presses ---------------------------------------------------------------------------------------

    async def press(self, done: UpdateWork, action: StaffAction, member: Member, data: ComplaintWork) -> None:
        ticket = await done.session.get(Ticket, data.ticket_id)
        if ticket is None or ticket.kind != "complaint":
            done.callback_text = self.t("error.stale_button")
            return
        if not is_open(ticket.status):
            state = self.t(f"ticket_status.{canonical_state(ticket.status)}")
            done.callback_text = self.t("case.not_now", number=ticket.number, state=state)
            return
        t, number = self.t, ticket.number
        if data.action in ("propose", "outcome") and not resolvable(ticket):
            state = self.t(f"ticket_status.{canonical_state(ticket.status)}")
            done.callback_text = self.t("case.not_now", number=ticket.number, state=state)
            return
        if data.action == "ask":
            self.cases.ask(done, action, ticket, ASK, t("complaint_desk.ask.question", number=number))
            done.callback_text = t("case.ask.toast")
        elif data.action == "propose":
            buttons = [(t(f"complaint_desk.outcome.{o}"), ComplaintWork(ticket.id, "outcome", o)) for o in OUTCOMES]
            keyboard = inline_keyboard([buttons[i : i + 2] for i in range(0, len(buttons), 2)])
            text = t("complaint_desk.ask.outcome", number=number)
            done.say(action.chat_id, text_payload(text, keyboard), purpose="staff", ticket_id=ticket.id)
        elif data.action == "outcome" and data.outcome != "none":
            outcome = t(f"complaint_desk.outcome.{data.outcome}")
            self.cases.ask(
                done,
                action,
                ticket,
                PROPOSE + data.outcome,
                t("complaint_desk.ask.proposal", number=number, outcome=outcome),
            )
            done.callback_text = t("case.ask.toast")
        elif data.action == "expect":
            self.cases.ask(done, action, ticket, DATE, t("complaint_desk.ask.date", number=number))
            done.callback_text = t("case.ask.toast")
        elif data.action == "serious":
            await self._mark_serious(done, member, ticket)
        else:
            done.callback_text = t("error.stale_button")

    async def _mark_serious(self, done: UpdateWork, member: Member, ticket: Ticket) -> None:
        if ticket.serious:
            done.callback_text = self.t("complaint_desk.staff.already_serious", number=ticket.number)
            return
        ticket.serious = True
        self._audit(done, ticket, f"staff:{member.user_id}", "marked_serious", {})
        await self.cases.escalate(
            done, ticket, [self.t("complaint_desk.staff.serious", number=ticket.number, who=member.name)]
        )
        done.callback_text = self.t("case.done", number=ticket.number, state=self.t("case.serious"))

    # ---- staff replies to the desk's prompts -------------------------------------------------------------

    async def _question(self, done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket, text: str) -> None:
        question = await self._usable(done, action, ticket, ASK, text)
        if question is None:
            return
        if not await self._tell(done, ticket, "complaint_desk.tell.question", question=question):
            self._say_staff(done, action.chat_id, ticket, self.t("complaint_desk.staff.no_chat", number=ticket.number))
            return
        ticket.question, ticket.question_asked_at = question, done.now
        ticket.first_response_at = ticket.first_response_at or done.now
        self._audit(done, ticket, f"staff:{member.user_id}", "question_asked", {"question": question[:500]})
        await self.cases.post(done, ticket)
        self._say_staff(
            done,
            action.chat_id,
            ticket,
            self.t("complaint_desk.staff.question_sent", number=ticket.number, who=member.name),
        )

    def _proposal_of(self, outcome: str) -> PromptAnswer:
        async def answer(done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket, text: str) -> None:
            await self._proposal(done, action, member, ticket, outcome, text)

        return answer

    async def _proposal(
        self, done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket, outcome: str, text: str
    ) -> None:
        proposal = await self._usable(done, action, ticket, PROPOSE + outcome, text)
        if proposal is None:
            return
        conversation = await self._conversation(done.session, ticket)
        if conversation is None:
            self._say_staff(done, action.chat_id, ticket, self.t("complaint_desk.staff.no_chat", number=ticket.number))
            return
        ticket.proposal, ticket.proposed_outcome = proposal, outcome
        ticket.first_response_at = ticket.first_response_at or done.now
        event = self._audit(
            done, ticket, f"staff:{member.user_id}", "solution_proposed", {"outcome": outcome, "text": proposal[:500]}
        )
        await done.session.flush()  # the event's id names this proposal on the merchant's buttons
        t = Translator(conversation.locale, self.t.locale)
        keyboard = inline_keyboard(
            [
                [
                    (t("complaint_desk.button.accept"), ComplaintAnswer(ticket.id, event.id, "accept")),
                    (t("complaint_desk.button.reject"), ComplaintAnswer(ticket.id, event.id, "reject")),
                ]
            ]
        )
        said = t(
            "complaint_desk.tell.proposal",
            number=ticket.number,
            outcome=t(f"complaint_desk.outcome.{outcome}"),
            text=proposal,
        )
        done.say(conversation.chat_id, text_payload(said, keyboard), ticket_id=ticket.id)
        await self.cases.post(done, ticket)
        named = self.t(f"complaint_desk.outcome.{outcome}")
        self._say_staff(
            done,
            action.chat_id,
            ticket,
            self.t("complaint_desk.staff.proposal_sent", number=ticket.number, outcome=named, who=member.name),
        )

    async def _expected(self, done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket, text: str) -> None:
        said = await self._usable(done, action, ticket, DATE, text)
        if said is None:
            return
        day = self.day_ahead(said, done.now)
        if day is None:
            again = self.t("complaint_desk.ask.date_again", number=ticket.number, text=said[:40])
            self.cases.ask(done, action, ticket, DATE, again)
            return
        ticket.expected_at = datetime.combine(day, time(0, 0), self.zone)
        # The date promised is what the SLA watch now holds staff to: the end of that working day.
        ticket.sla_due_at = end_of_working_day(self.cases.calendar, self.cases.desk.working_hours, ticket.expected_at)
        ticket.resolve_warned_at = ticket.resolve_breached_at = None
        self._audit(done, ticket, f"staff:{member.user_id}", "expected_date_set", {"date": day.isoformat()})
        await self.cases.post(done, ticket)
        await self._tell(done, ticket, "complaint_desk.tell.expected", date=day.isoformat())
        self._say_staff(
            done,
            action.chat_id,
            ticket,
            self.t("complaint_desk.staff.expected_set", number=ticket.number, date=day.isoformat(), who=member.name),
        )

    def day_ahead(self, text: str, now: datetime) -> date | None:
        """YYYY-MM-DD, or MM-DD (this year's, or next year's once this year's has passed); today or later."""
        match = DAY.fullmatch(text.strip())
        if match is None:
            return None
        today = now.astimezone(self.zone).date()
        year = int(match.group(1)) if match.group(1) else today.year
        try:
            day = date(year, int(match.group(2)), int(match.group(3)))
            if match.group(1) is None and day < today:
                day = date(year + 1, day.month, day.day)
        except ValueError:
            return None
        return day if day >= today else None

    async def _usable(self, done: UpdateWork, action: StaffAction, ticket: Ticket, what: str, text: str) -> str | None:
        """The reply's text, when the complaint is still open and the reply says something; else asked again or told."""
        if not is_open(ticket.status):
            state = self.t(f"ticket_status.{canonical_state(ticket.status)}")
            self._say_staff(done, action.chat_id, ticket, self.t("case.not_now", number=ticket.number, state=state))
            return None
        text = text.strip()[:TEXT_MAX]
        if not text:
            self.cases.ask(done, action, ticket, what, self.t("complaint_desk.ask.empty", number=ticket.number))
            return None
        return text

    # ---- the merchant's side ---------------------------------------------------------------------------------

    async def merchant_answers(self, turn: Turn) -> bool:
        """The merchant's next message after a question, outside any dialogue, is their answer to it."""
        if turn.incoming.kind != "text" or self.dialogues.open_state(turn.conversation) is not None:
            return False
        ticket = await self._waiting_question(turn)
        if ticket is None or ticket.question is None:
            return False
        answer = turn.incoming.text.strip()[:TEXT_MAX]
        question = ticket.question
        self._audit(
            turn.work,
            ticket,
            f"merchant:{turn.conversation.telegram_user_id}",
            "merchant_answered",
            {"question": question[:500], "answer": answer},
        )
        ticket.question = None
        await self.cases.post(turn.work, ticket)
        said = self.t(
            "complaint_desk.staff.answered",
            number=ticket.number,
            question=mask_numbers(question),
            answer=mask_numbers(answer),
        )
        await self._under_case(turn.work, ticket, said)
        turn.say_text("complaint_desk.tell.thanks", number=ticket.number)
        return True

    async def _waiting_question(self, turn: Turn) -> Ticket | None:
        conversation = turn.conversation
        theirs = [Ticket.telegram_user_id == conversation.telegram_user_id]
        if conversation.merchant_id is not None:
            theirs.append(Ticket.merchant_id == conversation.merchant_id)
        rows = await turn.session.execute(
            select(Ticket)
            .where(Ticket.kind == "complaint", Ticket.question.is_not(None), or_(*theirs))
            .order_by(Ticket.question_asked_at.desc(), Ticket.id.desc())
        )
        return next((t for t in rows.scalars() if is_open(t.status)), None)

    async def answer_proposal(self, turn: Turn, data: ComplaintAnswer) -> None:
        ticket = await turn.session.get(Ticket, data.ticket_id)
        if ticket is None or not await self._proposal_stands(turn, ticket, data.proposal):
            turn.stale_button()
            return
        actor = f"merchant:{turn.conversation.telegram_user_id}"
        outcome = ticket.proposed_outcome or "other"
        staff_outcome = self.t(f"complaint_desk.outcome.{outcome}")
        said_outcome = turn.t(f"complaint_desk.outcome.{outcome}")
        if data.answer == "accept":
            ticket.agreed_outcome = outcome
            ticket.resolution_note = ticket.proposal
            detail = {"agreed_outcome": outcome, "proposal": data.proposal}
            await self.cases.apply(turn.work, None, ticket, "resolve_remote", detail=detail, actor=actor)
            reply = turn.t("complaint_desk.tell.accepted", number=ticket.number, outcome=said_outcome)
            self._edit_question(turn, reply)
            await self._under_case(
                turn.work, ticket, self.t("complaint_desk.staff.accepted", number=ticket.number, outcome=staff_outcome)
            )
            turn.callback_text = None
            return
        text = ticket.proposal or ""
        ticket.proposal = ticket.proposed_outcome = None
        self._audit(turn.work, ticket, actor, "proposal_rejected", {"outcome": outcome, "proposal": data.proposal})
        line = self.t(
            "complaint_desk.staff.rejected", number=ticket.number, outcome=staff_outcome, text=mask_numbers(text)
        )
        await self.cases.escalate(turn.work, ticket, [line])
        self._edit_question(turn, turn.t("complaint_desk.tell.rejected", number=ticket.number))

    async def _proposal_stands(self, turn: Turn, ticket: Ticket, proposal: int) -> bool:
        """The press is the merchant's own, on the proposal now on the table of an open complaint."""
        conversation = turn.conversation
        theirs = (ticket.telegram_user_id is not None and ticket.telegram_user_id == conversation.telegram_user_id) or (
            ticket.merchant_id is not None and ticket.merchant_id == conversation.merchant_id
        )
        if not theirs or ticket.kind != "complaint" or not ticket.proposal or not resolvable(ticket):
            return False
        latest = await turn.session.execute(
            select(TicketEvent.id)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "solution_proposed")
            .order_by(TicketEvent.id.desc())
            .limit(1)
        )
        return latest.scalar_one_or_none() == proposal

    @staticmethod
    def _edit_question(turn: Turn, text: str) -> None:
        """The proposal's message becomes the answer given: its buttons go."""
        reply = text_payload(text)
        if turn.incoming.message_id is not None:
            reply["edit_message_id"] = turn.incoming.message_id
        turn.say(reply)

    # ---- until satisfied ---------------------------------------------------------------------------------

    async def reopened(self, work: UpdateWork, ticket: Ticket) -> list[str]:
        """The second time a merchant is still not satisfied, the supervisors are called (the handler stays)."""
        if ticket.kind != "complaint" or ticket.reopen_count < 2:
            return []
        assignee = await work.session.get(Staff, ticket.assignee_id) if ticket.assignee_id else None
        who = assignee.name if assignee else self.t("staff.none")
        return [self.t("complaint_desk.staff.reopened_again", number=ticket.number, count=ticket.reopen_count, who=who)]

    # ---- helpers ---------------------------------------------------------------------------------------------

    async def _conversation(self, session: AsyncSession, ticket: Ticket) -> Conversation | None:
        return await session.get(Conversation, ticket.telegram_user_id) if ticket.telegram_user_id else None

    async def _tell(self, work: UpdateWork, ticket: Ticket, key: str, **params: Any) -> bool:
        """Say `key` to the merchant in their language; False when they have no chat with the bot."""
        if await self._conversation(work.session, ticket) is None:
            return False
        await self.cases.tell_merchant(work, ticket, key, **params)
        return True

    async def _under_case(self, work: UpdateWork, ticket: Ticket, text: str) -> None:
        """A line for the group, as a reply to the case's message when it is out already."""
        if self.cases.staff_chat_id is None:
            return
        payload = text_payload(text)
        case = await work.session.get(OutboxMessage, ticket.case_outbox_id) if ticket.case_outbox_id else None
        if case is not None and case.message_id is not None:
            payload["reply_to_message_id"] = case.message_id
        work.say(self.cases.staff_chat_id, payload, purpose="staff", ticket_id=ticket.id)

    @staticmethod
    def _say_staff(done: UpdateWork, chat_id: int, ticket: Ticket, text: str) -> None:
        done.say(chat_id, text_payload(text), purpose="staff", ticket_id=ticket.id)

    @staticmethod
    def _audit(work: UpdateWork, ticket: Ticket, actor: str, action: str, detail: dict[str, Any]) -> TicketEvent:
        event = TicketEvent(ticket_id=ticket.id, at=work.now, actor=actor, action=action, detail=detail)
        work.session.add(event)
        return event

    def _day(self, at: datetime) -> str:
        return local_day(at, self.zone)
