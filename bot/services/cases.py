"""The staff desk's cases: one message per case in the staff group, edited in place, worked by buttons.

A case is a ticket: a repair report, a complaint, a survey finding, an enquiry. Its
lifecycle is the domain's (`bot/domain/cases.py`). A press is applied inside the
update's transaction: the new state and assignee, the audit event, the case message
re-rendered, the merchant told in their own language, and what a resolution sets off
(the terminal's warranty, the post-repair follow-up). Actions that need more than a
press (scheduling a visit, recording on-site work) are steps other capabilities plug in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import AssignTo, CallbackData, CaseButton
from bot.delivery.port import Payload
from bot.domain.calendar import WorkCalendar
from bot.domain.cases import ACTIONS, InvalidTransition, actions_for, canonical_state, next_state, permitted
from bot.domain.followup_policy import FollowUpPolicy
from bot.domain.privacy import mask_numbers, mask_phone
from bot.domain.sla import deadlines
from bot.i18n import Translator
from bot.services.followups import plan_for_ticket
from bot.services.registry import Registry
from bot.services.render import inline_keyboard, local_day, local_minute, text_payload
from bot.services.team import Team, active_supervisors, mention, utf16_length
from bot.services.turn import Member, StaffAction
from bot.services.updates import Updates, UpdateWork
from bot.storage.models import (
    Attachment,
    Conversation,
    Merchant,
    OutboxMessage,
    Staff,
    Terminal,
    Ticket,
    TicketEvent,
)

log = logging.getLogger("posbot.cases")

# A step another capability takes when its button is pressed (a visit to schedule, on-site work to record).
CaseStep = Callable[[UpdateWork, StaffAction, Member, Ticket], Awaitable[None]]
# Buttons another capability adds to a kind of case, as the case stands now.
CaseTool = Callable[[AsyncSession, Ticket], Awaitable[list[tuple[str, CallbackData]]]]
# What a resolution sets off beyond the case itself.
ResolvedHook = Callable[[UpdateWork, Ticket], Awaitable[None]]
# A staff member's reply to a prompt the desk sent (purpose "ask:<what>"): the text answers it.
PromptAnswer = Callable[[UpdateWork, StaffAction, Member, Ticket, str], Awaitable[None]]
# Lines another capability adds to a kind of case's message (a complaint's proposal, its promised date).
CaseDetail = Callable[[AsyncSession, Ticket], Awaitable[list[str]]]
# What a capability says when a case reopens by the merchant's answer: lines that call the supervisors, or none.
ReopenedHook = Callable[[UpdateWork, Ticket], Awaitable[list[str]]]
# A kind of case with deadlines of its own (a complaint's "answered within N working days"), from its
# opening: (respond by, resolve by).
DeadlineRule = Callable[[Ticket, datetime], tuple[datetime, datetime]]
# What a kind of case is about, in the group's language (a complaint's subject and the outcome wanted).
CaseFacts = Callable[[Translator, Ticket], list[str]]

MEDIA_GROUP_MAX = 10  # Bot API sendMediaGroup: 2-10 items
# Kinds whose case message a staff reply answers to the merchant (other kinds: a reply is a note).
ANSWERED_BY_REPLY = ("enquiry", "complaint")
NUMBER_PREFIX = {"repair": "R", "complaint": "C", "finding": "F", "enquiry": "Q"}


def category_key(kind: str, category: str) -> str:
    """The locale key naming a case's category: a repair's fault, a complaint's subject."""
    return f"form.complaint.subject.{category}" if kind == "complaint" else f"form.repair.category.{category}"


def case_number(kind: str, year: int, ticket_id: int) -> str:
    return f"{NUMBER_PREFIX.get(kind, 'R')}-{year}-{ticket_id:06d}"


class CaseDesk:
    def __init__(
        self,
        updates: Updates,
        team: Team,
        policy: FollowUpPolicy,
        calendar: WorkCalendar,
        *,
        staff_chat_id: int | None,
        locale: str = "zh_CN",
        zone: ZoneInfo,
    ) -> None:
        self.updates = updates
        self.team = team
        self.policy = policy
        self.desk = policy.desk
        self.calendar = calendar
        self.staff_chat_id = staff_chat_id
        self.t = Translator(locale)
        self.zone = zone
        self.steps: dict[str, CaseStep] = {}
        self.prompts: dict[str, PromptAnswer] = {}
        self.on_resolved: list[ResolvedHook] = [self._warranty, self._plan_follow_up]
        self.tools: dict[str, list[CaseTool]] = {}
        self.details: dict[str, list[CaseDetail]] = {}
        self.on_reopened: list[ReopenedHook] = []
        self.deadline_rules: dict[str, DeadlineRule] = {}  # by kind; the others follow the SLA by severity
        self.facts: dict[str, CaseFacts] = {}  # by kind; the others show a repair's fault

    def register(self, registry: Registry) -> None:
        registry.staff_button(CaseButton, self.team.button(self.press))
        registry.staff_button(AssignTo, self.team.button(self.assign_to))
        registry.staff_reply(self.answer_prompt)
        self.prompt("resolve_onsite", self._record_onsite)

    def step(self, action: str, handler: CaseStep) -> None:
        """Another capability answers this button (its press still goes through the staff gate)."""
        if action in self.steps:
            raise ValueError(f"case step {action!r} is registered twice")
        self.steps[action] = handler

    def tool(self, kind: str, buttons: CaseTool) -> None:
        """Another capability's buttons on this kind of case (e.g. a finding's "open a repair ticket")."""
        self.tools.setdefault(kind, []).append(buttons)

    def detail(self, kind: str, lines: CaseDetail) -> None:
        """Another capability's lines on this kind of case's message, above its deadlines."""
        self.details.setdefault(kind, []).append(lines)

    def prompt(self, what: str, handler: PromptAnswer) -> None:
        if what in self.prompts:
            raise ValueError(f"case prompt {what!r} is registered twice")
        self.prompts[what] = handler

    # ---- opening -----------------------------------------------------------------------------------------

    async def open(
        self,
        work: UpdateWork,
        ticket: Ticket,
        *,
        actor: str,
        detail: dict[str, Any] | None = None,
        evidence_from: int | None = None,
    ) -> None:
        """A new case: numbered, routed, given its deadlines, audited and posted to the staff group, with the
        photos and documents of the submission `evidence_from` attached to it."""
        session = work.session
        if ticket.id is None:
            session.add(ticket)
            await session.flush()
        if evidence_from is not None:
            await session.execute(
                update(Attachment).where(Attachment.submission_id == evidence_from).values(ticket_id=ticket.id)
            )
        if ticket.number is None:
            ticket.number = case_number(ticket.kind, work.now.astimezone(self.zone).year, ticket.id)
        ticket.role = ticket.role or self.desk.routing.role_for(ticket.kind)
        if canonical_state(ticket.status) not in ("resolved", "closed"):
            rule = self.deadline_rules.get(ticket.kind)
            if rule is not None:
                ticket.respond_due_at, ticket.sla_due_at = rule(ticket, ticket.created_at)
            else:
                due = deadlines(self.desk, self.calendar, ticket.severity, ticket.created_at)
                ticket.respond_due_at, ticket.sla_due_at = due.respond_by, due.resolve_by
        session.add(TicketEvent(ticket_id=ticket.id, at=work.now, actor=actor, action="created", detail=detail or {}))
        await self.post(work, ticket)

    # ---- the case message --------------------------------------------------------------------------------

    async def post(
        self,
        work: UpdateWork,
        ticket: Ticket,
        *,
        again: bool = False,
        mention: str = "",
        entities: list[dict[str, Any]] | None = None,
    ) -> None:
        """Show the case in the group: edit its message in place, or post it (anew, when `again`).

        `mention` heads the text; `entities` (text mentions) count their offsets from its start.
        """
        if self.staff_chat_id is None:
            log.warning("no STAFF_CHAT_ID: case %s is not shown to staff", ticket.number)
            return
        payload = await self.render(work.session, ticket)
        if mention:
            payload["text"] = f"{mention}\n{payload['text']}"
        if entities:
            payload["entities"] = entities
        row = await work.session.get(OutboxMessage, ticket.case_outbox_id) if ticket.case_outbox_id else None
        if row is not None and not again:
            if row.status == "pending":
                row.payload = payload  # not out yet: it goes out as it is now
                return
            if row.message_id is not None:
                payload["edit_message_id"] = row.message_id
                work.say(self.staff_chat_id, payload, purpose="case_edit", ticket_id=ticket.id)
                return
        message = work.say(self.staff_chat_id, payload, purpose="case", ticket_id=ticket.id)
        await work.session.flush()
        ticket.case_outbox_id = message.id

    async def render(self, session: AsyncSession, ticket: Ticket) -> Payload:
        t = self.t
        none = t("staff.none")
        merchant = await session.get(Merchant, ticket.merchant_id) if ticket.merchant_id else None
        terminal = await session.get(Terminal, ticket.terminal_id) if ticket.terminal_id else None
        assignee = await session.get(Staff, ticket.assignee_id) if ticket.assignee_id else None
        who = merchant.name if merchant else none
        if ticket.unverified:
            who = f"{who} · {t('staff.unverified', user=ticket.telegram_user_id)}"
        state = canonical_state(ticket.status)
        lines = [
            t(f"case.header.{ticket.kind}", number=ticket.number),
            t(
                "case.state",
                state=t(f"ticket_status.{state}"),
                role=t(f"role.{ticket.role}") if ticket.role else none,
                assignee=assignee.name if assignee else none,
            ),
            t("case.merchant", merchant=who),
        ]
        if ticket.serial:
            model = f" ({terminal.model})" if terminal and terminal.model else ""
            lines.append(t("case.terminal", serial=ticket.serial, model=model))
            if terminal and terminal.warranty_until and terminal.warranty_until > ticket.created_at:
                lines.append(t("case.under_warranty", until=self._day(terminal.warranty_until)))
        facts = self.facts.get(ticket.kind)
        if facts is not None:
            lines += facts(t, ticket)
        elif ticket.category:
            lines.append(t("case.category", category=t(category_key(ticket.kind, ticket.category))))
        lines.append(t(f"case.severity.{ticket.severity}") if ticket.severity != "normal" else "")
        lines.append(t("case.serious") if ticket.serious else "")
        if ticket.description:
            lines.append(t("case.description", text=mask_numbers(ticket.description)))
        if ticket.quote:
            lines.append(t("case.quote", text=mask_numbers(ticket.quote)))
        if ticket.contact_phone:
            lines.append(t("case.phone", phone=mask_phone(ticket.contact_phone)))
        photos = await self._attachments(session, ticket)
        if photos:
            lines.append(t("case.photos", count=len(photos)))
        if ticket.visit_at:
            lines.append(t(f"case.visit.{ticket.visit_state or 'proposed'}", at=self._moment(ticket.visit_at)))
        elif ticket.preferred_visit_at:
            lines.append(t("case.preferred_visit", at=self._moment(ticket.preferred_visit_at)))
        if state in ("resolved", "closed"):
            method = (ticket.resolution_method or "remote") if ticket.kind == "repair" else "other"
            lines.append(t(f"case.resolved.{method}"))
            for field in ("work_done", "parts_replaced", "resolution_note"):
                value = getattr(ticket, field)
                if value:
                    lines.append(t(f"case.{field}", text=mask_numbers(value)))
        for detail in self.details.get(ticket.kind, ()):
            lines += await detail(session, ticket)
        if state not in ("resolved", "closed"):
            if ticket.first_response_at is None and ticket.respond_due_at:
                lines.append(t("case.respond_by", at=self._moment(ticket.respond_due_at)))
            if ticket.sla_due_at:
                lines.append(t("case.resolve_by", at=self._moment(ticket.sla_due_at)))
        if ticket.reopen_count:
            lines.append(t("case.reopened_times", count=ticket.reopen_count))
        extra: list[tuple[str, CallbackData]] = []
        for tool in self.tools.get(ticket.kind, ()):
            extra += await tool(session, ticket)
        return text_payload("\n".join(line for line in lines if line), self.keyboard(ticket, bool(photos), extra))

    def keyboard(
        self, ticket: Ticket, photos: bool, extra: list[tuple[str, CallbackData]] | None = None
    ) -> dict[str, Any] | None:
        """The buttons that fit the state; who may press which is checked on the press."""
        state = canonical_state(ticket.status)
        actions: list[str] = list(actions_for(state, "supervisor", self.desk.supervisor_only))
        if ticket.kind != "repair":
            actions = [a for a in actions if a not in ("schedule_visit", "start_work", "wait_parts", "resolve_onsite")]
        if ticket.contact_phone or ticket.merchant_id:
            actions.append("call")
        if photos:
            actions.append("photos")
        buttons: list[tuple[str, CallbackData]] = [
            (self.t(self._button_label(ticket, a)), CaseButton(ticket.id, a))  # type: ignore[arg-type]
            for a in actions
        ]
        buttons += extra or []
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        return inline_keyboard(rows) if rows else None

    @staticmethod
    def _button_label(ticket: Ticket, action: str) -> str:
        """A repair is resolved remotely or on site; other cases (complaints, enquiries) are simply resolved."""
        if action == "resolve_remote" and ticket.kind != "repair":
            return "case.button.resolve"
        return f"case.button.{action}"

    # ---- presses -------------------------------------------------------------------------------------------

    async def press(self, done: UpdateWork, action: StaffAction, member: Member, data: CaseButton) -> None:
        ticket = await done.session.get(Ticket, data.ticket_id)
        if ticket is None:
            done.callback_text = self.t("error.stale_button")
            return
        if data.action == "call":
            await self.reveal_phone(done, action, member, ticket)
            return
        if data.action == "photos":
            await self.show_attachments(done, action, ticket)
            return
        if data.action in self.steps:
            if await self._check(done, member, ticket, data.action):
                await self.steps[data.action](done, action, member, ticket)
            return
        if data.action == "assign":
            if await self._check(done, member, ticket, "assign"):
                await self._offer_assignees(done, action, ticket)
            return
        if data.action == "resolve_onsite":
            if await self._check(done, member, ticket, "resolve_onsite"):
                self.ask(
                    done, action, ticket, "resolve_onsite", self.t("case.ask.resolve_onsite", number=ticket.number)
                )
                done.callback_text = self.t("case.ask.toast")
            return
        if data.action in ACTIONS:
            await self.apply(done, member, ticket, data.action)

    async def _check(self, done: UpdateWork, member: Member | None, ticket: Ticket, action: str) -> bool:
        """Whether the state allows it and the member may (no member: the merchant's own decision, e.g.
        accepting a complaint's solution); if not, the presser is told why, nothing changes."""
        try:
            next_state(ticket.status, action)
        except InvalidTransition:
            state = self.t(f"ticket_status.{canonical_state(ticket.status)}")
            done.callback_text = self.t("case.not_now", number=ticket.number, state=state)
            return False
        if member is None:
            return True
        role = "supervisor" if member.supervisor else member.role
        if not permitted(role, action, ticket.status, self.desk.supervisor_only):
            done.callback_text, done.alert = self.t("team.not_supervisor"), True
            done.audit(member.user_id, "refused", f"ticket:{ticket.id}", action=action, reason="not_supervisor")
            return False
        return True

    async def apply(
        self,
        done: UpdateWork,
        member: Member | None,
        ticket: Ticket,
        action: str,
        *,
        note: str | None = None,
        detail: dict[str, Any] | None = None,
        assignee: Staff | None = None,
        actor: str | None = None,
    ) -> bool:
        """One lifecycle step, whole: state, assignee, stamps, audit, case message, merchant told.

        Without a member the step is the merchant's (`actor`, e.g. "merchant:<id>"): the handler stays."""
        if not await self._check(done, member, ticket, action):
            return False
        ticket.status = next_state(ticket.status, action)
        if member is not None:
            staff: Staff | None = assignee or await self._staff_row(done.session, member)
        else:
            staff = assignee or (await done.session.get(Staff, ticket.assignee_id) if ticket.assignee_id else None)
        if staff is not None and (action in ("take", "assign") or ticket.assignee_id is None):
            ticket.assignee_id = staff.id
        if ticket.first_response_at is None:
            ticket.first_response_at = done.now
        if action in ("resolve_remote", "resolve_onsite"):
            ticket.resolved_at = done.now
            ticket.resolution_method = "remote" if action == "resolve_remote" else "onsite"
        elif action == "close":
            ticket.closed_at = done.now
        elif action == "reopen":
            self._restart(ticket, done.now)
        event = {"resolve_remote": "resolved", "resolve_onsite": "resolved"}.get(action, action)
        audit: dict[str, Any] = {"state": ticket.status, **(detail or {})}
        if action in ("resolve_remote", "resolve_onsite"):
            audit["method"] = ticket.resolution_method
        if note:
            audit["note"] = note[:500]
        if assignee is not None:
            audit["assignee"] = assignee.telegram_user_id
        actor = actor or f"staff:{member.user_id if member else 0}"
        done.session.add(TicketEvent(ticket_id=ticket.id, at=done.now, actor=actor, action=event, detail=audit))
        calls = [line for hook in self.on_reopened for line in await hook(done, ticket)] if action == "reopen" else []
        if calls:  # reopened once too often: the supervisors hear of it (a complaint's second reopening)
            await self.escalate(done, ticket, calls)
        else:
            await self.post(done, ticket)
        if action in ACTIONS:  # the merchant hears of every lifecycle step
            who = staff.name if staff else self.t("staff.none")
            await self.tell_merchant(done, ticket, f"case.tell.{action}", who=who)
        if action in ("resolve_remote", "resolve_onsite"):
            for hook in self.on_resolved:
                await hook(done, ticket)
        done.callback_text = self.t("case.done", number=ticket.number, state=self.t(f"ticket_status.{ticket.status}"))
        return True

    def _restart(self, ticket: Ticket, now: datetime) -> None:
        """A reopened case counts the reopening and gets a fresh resolution deadline from now."""
        ticket.reopen_count += 1
        ticket.resolved_at = ticket.closed_at = None
        rule = self.deadline_rules.get(ticket.kind)
        ticket.sla_due_at = (
            rule(ticket, now)[1] if rule else deadlines(self.desk, self.calendar, ticket.severity, now).resolve_by
        )
        ticket.resolve_warned_at = ticket.resolve_breached_at = None

    async def reopen(self, work: UpdateWork, ticket: Ticket, *, actor: str, detail: dict[str, Any]) -> None:
        """The merchant is not satisfied (a follow-up's answer): the case opens again, to the same handler,
        posted anew so the group sees it at the bottom."""
        try:
            ticket.status = next_state(ticket.status, "reopen")
        except InvalidTransition:
            log.info("case %s is %s: not reopened again", ticket.number, ticket.status)
            return
        self._restart(ticket, work.now)
        work.session.add(TicketEvent(ticket_id=ticket.id, at=work.now, actor=actor, action="reopened", detail=detail))
        calls = [line for hook in self.on_reopened for line in await hook(work, ticket)]
        if calls:
            await self.escalate(work, ticket, calls)
        else:
            await self.post(work, ticket, again=True)

    # ---- the supervisors called -----------------------------------------------------------------------------

    async def escalate(
        self, work: UpdateWork, ticket: Ticket, lines: list[str], *, key: str = "sla.supervisors", again: bool = True
    ) -> None:
        """The case shown headed by `lines` and the supervisors (`key` says them), mentioned so Telegram notifies
        each; posted anew at the bottom of the group unless `again` is False."""
        supervisors = await active_supervisors(work.session)
        lines = list(lines)
        entities: list[dict[str, Any]] = []
        if supervisors:
            head = "".join(line + "\n" for line in lines)
            line, entities = mention(self.t, key, supervisors, after=head)
            lines.append(line)
        else:
            log.warning("case %s calls the supervisors and no active supervisor is on the staff list", ticket.number)
            lines.append(self.t(f"{key}_unnamed"))
        await self.post(work, ticket, again=again, mention="\n".join(lines), entities=entities)

    async def _staff_row(self, session: AsyncSession, member: Member) -> Staff:
        """The member's row (an admin acting for the first time gets one, so the case can name them)."""
        found = await session.execute(select(Staff).where(Staff.telegram_user_id == member.user_id))
        staff = found.scalar_one_or_none()
        if staff is None:
            staff = Staff(telegram_user_id=member.user_id, name=member.name, role=member.role, active=not member.admin)
            session.add(staff)
            await session.flush()
        return staff

    # ---- assign ----------------------------------------------------------------------------------------------

    async def _offer_assignees(self, done: UpdateWork, action: StaffAction, ticket: Ticket) -> None:
        rows = await done.session.execute(select(Staff).where(Staff.active.is_(True)).order_by(Staff.role, Staff.name))
        people = list(rows.scalars())[:20]
        if not people:
            done.callback_text = self.t("team.list_empty")
            return
        buttons = [(f"{p.name} · {self.t(f'role.{p.role}')}", AssignTo(ticket.id, p.id)) for p in people]
        done.say(
            action.chat_id,
            text_payload(
                self.t("case.assign_to", number=ticket.number),
                inline_keyboard([buttons[i : i + 2] for i in range(0, len(buttons), 2)]),
            ),
            purpose="staff",
            ticket_id=ticket.id,
        )

    async def assign_to(self, done: UpdateWork, action: StaffAction, member: Member, data: AssignTo) -> None:
        ticket = await done.session.get(Ticket, data.ticket_id)
        staff = await done.session.get(Staff, data.staff_id)
        if ticket is None or staff is None or not staff.active:
            done.callback_text = self.t("error.stale_button")
            return
        if await self.apply(done, member, ticket, "assign", assignee=staff) and action.message_id is not None:
            # The choice is made: the list of names gives way to who got it.
            text = self.t("case.assigned", number=ticket.number, who=staff.name)
            done.say(action.chat_id, {**text_payload(text), "edit_message_id": action.message_id}, purpose="staff")

    # ---- prompts: a staff member answers by replying ----------------------------------------------------

    def ask(self, done: UpdateWork, action: StaffAction, ticket: Ticket, what: str, text: str) -> None:
        """A question to the staff member in the chat they pressed in; their reply to it is the answer.

        Telegram opens the reply box only for the people a selective force-reply mentions, so in a group
        the question starts with the presser's name as a text mention; nobody else's client is disturbed.
        """
        name = action.user_name or str(action.user_id)
        payload = text_payload(f"{name}: {text}", {"force_reply": True, "selective": True})
        payload["entities"] = [
            {
                "type": "text_mention",
                "offset": 0,
                "length": utf16_length(name),
                "user": {"id": action.user_id, "is_bot": False, "first_name": name},
            }
        ]
        done.say(action.chat_id, payload, purpose=f"ask:{what}"[:24], ticket_id=ticket.id)

    async def answer_prompt(self, done: UpdateWork, action: StaffAction, member: Member, text: str) -> bool:
        """A reply to one of the desk's prompts, or to a case message: the merchant's answer (enquiries,
        complaints), or a note on the case."""
        if action.reply_to_message_id is None:
            return False
        found = await done.session.execute(
            select(OutboxMessage).where(
                OutboxMessage.chat_id == action.chat_id,
                OutboxMessage.message_id == action.reply_to_message_id,
                OutboxMessage.ticket_id.is_not(None),
            )
        )
        row = found.scalars().first()
        if row is None or row.ticket_id is None:
            return False
        ticket = await done.session.get(Ticket, row.ticket_id)
        if ticket is None:
            return False
        if row.purpose.startswith("ask:") and row.purpose[4:] in self.prompts:
            await self.prompts[row.purpose[4:]](done, action, member, ticket, text)
            return True
        if row.purpose in ("case", "case_edit"):
            if ticket.kind in ANSWERED_BY_REPLY and await self._relay(done, action, member, ticket, text):
                return True
            done.session.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    at=done.now,
                    actor=f"staff:{member.user_id}",
                    action="note",
                    detail={"note": text.strip()[:500]},
                )
            )
            key = "enquiries.no_chat" if ticket.kind in ANSWERED_BY_REPLY else "case.note_saved"
            done.say(action.chat_id, text_payload(self.t(key, number=ticket.number)), purpose="staff")
            return True
        return False

    async def _relay(self, done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket, text: str) -> bool:
        """A staff reply to an enquiry or a complaint is the service team's answer, said to the merchant as
        typed (no markup); the first answer is the case's first response, and a new case is the replier's.
        False when the merchant has no chat to say it in."""
        conversation = (
            await done.session.get(Conversation, ticket.telegram_user_id) if ticket.telegram_user_id else None
        )
        answer = text.strip()
        if conversation is None or not answer:
            return False
        t = Translator(conversation.locale, self.t.locale)
        payload = text_payload(t("enquiries.answer", number=ticket.number, text=answer))
        done.say(conversation.chat_id, payload, purpose="answer", ticket_id=ticket.id)
        if ticket.first_response_at is None:
            ticket.first_response_at = done.now
        role = "supervisor" if member.supervisor else member.role
        if canonical_state(ticket.status) == "new" and permitted(
            role, "take", ticket.status, self.desk.supervisor_only
        ):
            ticket.status = next_state(ticket.status, "take")
            ticket.assignee_id = (await self._staff_row(done.session, member)).id
            done.session.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    at=done.now,
                    actor=f"staff:{member.user_id}",
                    action="take",
                    detail={"state": ticket.status, "by": "answer"},
                )
            )
        done.session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=done.now,
                actor=f"staff:{member.user_id}",
                action="answered",
                detail={"staff": member.user_id, "text": answer[:2000]},
            )
        )
        await self.post(done, ticket)
        done.say(action.chat_id, text_payload(self.t("enquiries.relayed", number=ticket.number)), purpose="staff")
        return True

    async def _record_onsite(
        self, done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket, text: str
    ) -> None:
        """ "work done / parts replaced / note", a line each ("-" for none): the visit's record, and resolved."""
        lines = [line.strip() for line in text.strip().splitlines()]
        lines += [""] * (3 - len(lines))
        work_done, parts, note = (
            None if v in ("", "-", "—", "无") else v[:500] for v in (lines[0], lines[1], " ".join(lines[2:]))
        )
        if not work_done:
            self.ask(
                done, action, ticket, "resolve_onsite", self.t("case.ask.resolve_onsite_again", number=ticket.number)
            )
            return
        ticket.work_done, ticket.parts_replaced, ticket.resolution_note = work_done, parts, note
        detail = {"work_done": work_done, "parts": parts}
        if await self.apply(done, member, ticket, "resolve_onsite", note=note, detail=detail):
            done.say(action.chat_id, text_payload(done.callback_text or ""), purpose="staff")
            done.callback_text = None

    # ---- call the merchant -------------------------------------------------------------------------------

    async def reveal_phone(self, done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket) -> None:
        """The full number goes to the presser alone, in a direct message; who saw it is recorded."""
        merchant = await done.session.get(Merchant, ticket.merchant_id) if ticket.merchant_id else None
        phone = ticket.contact_phone or (merchant.phone if merchant else None)
        if not phone:
            done.callback_text, done.alert = self.t("case.no_phone", number=ticket.number), True
            return
        name = merchant.name if merchant else self.t("staff.none")
        done.say(
            member.user_id,
            text_payload(self.t("case.phone_private", number=ticket.number, merchant=name, phone=phone)),
            purpose="phone",
            ticket_id=ticket.id,
        )
        done.audit(member.user_id, "phone_revealed", f"ticket:{ticket.id}", chat=action.chat_id)
        done.callback_text, done.alert = self.t("case.phone_sent"), True

    # ---- the merchant's evidence ----------------------------------------------------------------------------

    async def show_attachments(self, done: UpdateWork, action: StaffAction, ticket: Ticket) -> None:
        """The merchant's photos and documents, as albums in the chat the button was pressed in.

        Telegram groups up to ten items of one kind in an album (photos and documents never mix),
        so each kind goes in albums of ten; the first carries the case number as its caption.
        """
        files = await self._attachments(done.session, ticket)
        if not files:
            done.callback_text = self.t("case.no_photos", number=ticket.number)
            return
        caption = self.t("case.photos_of", number=ticket.number)
        for kind in ("photo", "document"):
            items = [{"type": kind, "media": f.file_id} for f in files if f.kind == kind]
            for start in range(0, len(items), MEDIA_GROUP_MAX):
                payload: Payload = {"text": caption, "media": items[start : start + MEDIA_GROUP_MAX]}
                done.say(action.chat_id, payload, purpose="case_media", ticket_id=ticket.id)
                caption = ""
        done.callback_text = self.t("case.photos_sent", count=len(files))

    # ---- the merchant's side -----------------------------------------------------------------------------

    async def tell_merchant(self, work: UpdateWork, ticket: Ticket, key: str, **params: Any) -> None:
        """Say `key` to the merchant who reported the case, in their language, about this case."""
        if ticket.telegram_user_id is None:
            return
        conversation = await work.session.get(Conversation, ticket.telegram_user_id)
        if conversation is None:
            return
        t = Translator(conversation.locale, self.t.locale)
        params.setdefault("number", ticket.number)
        params.setdefault("state", t(f"ticket_status.{canonical_state(ticket.status)}"))
        if ticket.visit_at:
            params.setdefault("visit", self._moment(ticket.visit_at))
        work.say(conversation.chat_id, text_payload(t(key, **params)), ticket_id=ticket.id)

    # ---- after a resolution -------------------------------------------------------------------------------

    async def _warranty(self, work: UpdateWork, ticket: Ticket) -> None:
        """A repaired terminal is under warranty for the policy's days from the resolution (003)."""
        if ticket.terminal_id is None or ticket.kind != "repair" or self.desk.warranty_days <= 0:
            return
        terminal = await work.session.get(Terminal, ticket.terminal_id)
        if terminal is not None:
            until = (ticket.resolved_at or work.now) + timedelta(days=self.desk.warranty_days)
            terminal.warranty_until = max(until, terminal.warranty_until or until)

    async def _plan_follow_up(self, work: UpdateWork, ticket: Ticket) -> None:
        if ticket.kind in ("repair", "complaint"):
            await plan_for_ticket(work.session, self.policy, self.calendar, ticket, work.now)

    # ---- helpers -----------------------------------------------------------------------------------------

    async def _attachments(self, session: AsyncSession, ticket: Ticket) -> list[Attachment]:
        rows = await session.execute(
            select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)
        )
        return list(rows.scalars())

    def _moment(self, at: datetime) -> str:
        return local_minute(at, self.zone)

    def _day(self, at: datetime) -> str:
        return local_day(at, self.zone)
