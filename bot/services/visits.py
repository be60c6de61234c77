"""On-site visits (document 003, step 4): staff offer a time, the merchant confirms it or asks for another.

"📅 Schedule visit" on a case posts the times staff can offer (the domain's `visit_slots`). Choosing
one is the case's `schedule_visit` step, applied by the case desk, and the merchant is asked in their
own language to confirm it or to ask for another time. Their answer comes back in their own update:
it must be about their own ticket and about the appointment offered now, or it changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from bot.delivery.callbacks import VisitAnswer, VisitSlot
from bot.domain.cases import canonical_state
from bot.domain.visits import epoch_minutes, from_epoch_minutes, visit_slots
from bot.i18n import Translator
from bot.services.cases import CaseDesk
from bot.services.registry import Registry
from bot.services.render import inline_keyboard, text_payload
from bot.services.turn import Member, StaffAction, Turn
from bot.services.updates import UpdateWork
from bot.storage.models import Conversation, Staff, Ticket, TicketEvent


class Visits:
    def __init__(self, cases: CaseDesk) -> None:
        self.cases = cases
        self.t = cases.t  # staff read the group's language

    def register(self, registry: Registry) -> None:
        self.cases.step("schedule_visit", self.offer_slots)
        registry.staff_button(VisitSlot, self.cases.team.button(self.choose))
        registry.button(VisitAnswer, self.answer)

    # ---- staff: the times to offer, and the one chosen --------------------------------------------------

    async def offer_slots(self, done: UpdateWork, action: StaffAction, member: Member, ticket: Ticket) -> None:
        slots = visit_slots(
            done.now, self.cases.calendar, self.cases.desk.working_hours, preferred=ticket.preferred_visit_at
        )
        buttons = [(self.slot_label(self.t, slot), VisitSlot(ticket.id, epoch_minutes(slot))) for slot in slots]
        rows = []
        if ticket.preferred_visit_at is not None and slots and slots[0] == ticket.preferred_visit_at:
            rows.append([(self.t("visit.preferred", slot=buttons[0][0]), buttons[0][1])])
            buttons = buttons[1:]
        rows += [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        text = self.t("visit.choose", number=ticket.number)
        done.say(action.chat_id, text_payload(text, inline_keyboard(rows)), purpose="staff", ticket_id=ticket.id)

    async def choose(self, done: UpdateWork, action: StaffAction, member: Member, data: VisitSlot) -> None:
        ticket = await done.session.get(Ticket, data.ticket_id)
        if ticket is None:
            done.callback_text = self.t("error.stale_button")
            return
        slot = from_epoch_minutes(data.at)
        if slot <= done.now:
            done.callback_text, done.alert = self.t("visit.slot_past"), True
            return
        before = (ticket.visit_at, ticket.visit_state)
        # Set first: the case message and the merchant's notice both show the appointment.
        ticket.visit_at, ticket.visit_state = slot, "proposed"
        said = len(done.messages)
        if not await self.cases.apply(done, member, ticket, "schedule_visit", detail={"visit_at": slot.isoformat()}):
            ticket.visit_at, ticket.visit_state = before
            return
        assignee = await done.session.get(Staff, ticket.assignee_id) if ticket.assignee_id else None
        who = assignee.name if assignee else member.name
        asked = await self._ask_merchant(done, ticket, who, said)
        if action.message_id is not None:
            # The choice is made: the list of times gives way to what was offered.
            key = "visit.offered" if asked else "visit.offered_no_chat"
            text = self.t(key, number=ticket.number, at=self.moment(self.t, slot), who=member.name)
            done.say(action.chat_id, {**text_payload(text), "edit_message_id": action.message_id}, purpose="staff")

    async def _ask_merchant(self, done: UpdateWork, ticket: Ticket, who: str, said: int) -> bool:
        """Turn the desk's notice of the visit into the question: confirm, or ask for another time."""
        if ticket.telegram_user_id is None or ticket.visit_at is None:
            return False
        conversation = await done.session.get(Conversation, ticket.telegram_user_id)
        if conversation is None:
            return False
        notice = next(
            (m for m in done.messages[said:] if m.chat_id == conversation.chat_id and m.ticket_id == ticket.id), None
        )
        t = Translator(conversation.locale, self.t.locale)
        at = epoch_minutes(ticket.visit_at)
        keyboard = inline_keyboard(
            [
                [(t("visit.button.confirm"), VisitAnswer(ticket.id, at, "confirm"))],
                [(t("visit.button.another"), VisitAnswer(ticket.id, at, "another"))],
            ]
        )
        payload = text_payload(
            t("visit.offer", number=ticket.number, who=who, at=self.moment(t, ticket.visit_at)), keyboard
        )
        if notice is not None:
            notice.payload = payload  # one message: the notice becomes the question
        else:
            done.say(conversation.chat_id, payload, ticket_id=ticket.id)
        return True

    # ---- the merchant's answer ----------------------------------------------------------------------------

    async def answer(self, turn: Turn, data: VisitAnswer) -> None:
        ticket = await turn.session.get(Ticket, data.ticket_id)
        visit_at = (
            self._open_offer(turn, ticket, data.at) if ticket is not None and self._theirs(turn, ticket) else None
        )
        if ticket is None or visit_at is None:
            turn.stale_button()
            return
        confirmed = data.answer == "confirm"
        ticket.visit_state = "confirmed" if confirmed else "declined"
        turn.session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=turn.now,
                actor=f"merchant:{turn.conversation.telegram_user_id}",
                action="visit_confirmed" if confirmed else "visit_declined",
                detail={"visit_at": visit_at.isoformat()},
            )
        )
        at_staff = self.moment(self.t, visit_at)
        if confirmed:
            await self.cases.post(turn.work, ticket)
            self._tell_staff(turn.work, ticket, self.t("visit.confirmed_staff", number=ticket.number, at=at_staff))
        else:
            # Back at the bottom of the group, where the handler sees it, with their name on it.
            assignee = await turn.session.get(Staff, ticket.assignee_id) if ticket.assignee_id else None
            who = assignee.name if assignee else self.t("staff.none")
            mention = self.t("visit.declined_staff", who=who, number=ticket.number, at=at_staff)
            await self.cases.post(turn.work, ticket, again=True, mention=mention)
        key = "visit.confirmed" if confirmed else "visit.declined"
        reply = text_payload(turn.t(key, number=ticket.number, at=self.moment(turn.t, visit_at)))
        if turn.incoming.message_id is not None:
            reply["edit_message_id"] = turn.incoming.message_id  # the buttons go: the question is answered
        turn.say(reply)

    @staticmethod
    def _theirs(turn: Turn, ticket: Ticket) -> bool:
        conversation = turn.conversation
        if ticket.telegram_user_id is not None and ticket.telegram_user_id == conversation.telegram_user_id:
            return True
        return ticket.merchant_id is not None and ticket.merchant_id == conversation.merchant_id

    @staticmethod
    def _open_offer(turn: Turn, ticket: Ticket, at: int) -> datetime | None:
        """The appointment on offer, when the press answers it: the one offered now, still ahead, unanswered."""
        visit_at = ticket.visit_at
        if visit_at is None or epoch_minutes(visit_at) != at or visit_at <= turn.now:
            return None
        if ticket.visit_state != "proposed" or canonical_state(ticket.status) != "visit_scheduled":
            return None
        return visit_at

    def _tell_staff(self, work: UpdateWork, ticket: Ticket, text: str) -> None:
        if self.cases.staff_chat_id is not None:
            work.say(self.cases.staff_chat_id, text_payload(text), purpose="staff", ticket_id=ticket.id)

    # ---- how a time reads ---------------------------------------------------------------------------------

    def moment(self, t: Translator, at: datetime) -> str:
        local = at.astimezone(self.cases.zone)
        return f"{t(f'visit.weekday.{local.weekday()}')} {local.strftime('%Y-%m-%d %H:%M')}"

    def slot_label(self, t: Translator, at: datetime) -> str:
        local = at.astimezone(self.cases.zone)
        return t(
            "visit.slot",
            weekday=t(f"visit.weekday.{local.weekday()}"),
            day=local.strftime("%m-%d"),
            time=local.strftime("%H:%M"),
        )
