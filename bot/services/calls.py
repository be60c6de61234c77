"""Call tasks that can be done: take the call, get the number privately, record the answers by phone.

A follow-up nobody answered in the chat lands in the staff group as a call task
(`escalation()` in bot/services/followups.py). "Take the call" sends the merchant's
full number to the presser alone, in a direct message from the bot, and records who
saw it; never to the group. In that direct chat "Record the answers" opens the same
survey form through the same dialogue engine, on the merchant's behalf: the
submission is the merchant's, with method "phone" and the staff member as operator,
so phoned answers count like chat answers (001 §3(四): a phone follow-up is recorded
on the same form). Only staff pass the gate (bot/services/team.py).
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import CallTask
from bot.dialogs.schema import Form
from bot.i18n import Translator, locale_for
from bot.services.dialogues import Dialogues
from bot.services.followups import terminal_serial
from bot.services.registry import Registry
from bot.services.render import inline_keyboard, local_minute, text_payload
from bot.services.team import Team
from bot.services.turn import Incoming, Member, StaffAction, StaffChat, Turn
from bot.services.updates import UpdateWork
from bot.storage.models import Conversation, FollowUp, Merchant, OutboxMessage, Staff, Submission

log = logging.getLogger("posbot.calls")

# A call task is open while staff may still call: escalated, or called once ("not reached") and again.
OPEN_TASK = ("escalated", "called")


class CallDesk:
    def __init__(
        self,
        team: Team,
        dialogues: Dialogues,
        *,
        staff_chat_id: int | None,
        locale: str = "zh_CN",
        zone: ZoneInfo,
    ) -> None:
        self.team = team
        self.dialogues = dialogues
        self.staff_chat_id = staff_chat_id
        self.locale = locale
        self.t = Translator(locale)  # the staff group's language
        self.zone = zone

    def register(self, registry: Registry) -> None:
        registry.staff_button(CallTask, self.team.button(self.press))
        registry.on_submitted(self.on_submitted)

    async def press(self, done: UpdateWork, action: StaffAction, member: Member, data: CallTask) -> None:
        followup = await done.session.get(FollowUp, data.followup_id)
        if followup is None or followup.status not in OPEN_TASK:
            done.callback_text = self.t("error.stale_button")
            return
        merchant = await done.session.get(Merchant, followup.merchant_id)
        assert merchant is not None
        if data.action == "take":
            await self.take(done, action, member, followup, merchant)
        else:
            await self.record(done, action, member, followup, merchant)

    # ---- take the call ---------------------------------------------------------------------------------

    async def take(
        self, done: UpdateWork, action: StaffAction, member: Member, followup: FollowUp, merchant: Merchant
    ) -> None:
        """The number to the presser alone, with "Record the answers"; the group sees who took it."""
        if not merchant.phone:
            done.callback_text, done.alert = self.t("calls.no_phone", number=followup.id), True
            return
        holder = followup.handled_by
        if holder is not None and holder != member.user_id and not member.supervisor:
            who = await staff_name(done.session, holder)
            done.callback_text, done.alert = self.t("calls.taken_by_other", who=who), True
            return
        followup.handled_by = member.user_id
        conversation = await self._direct_chat(done, member, action)
        t = Translator(conversation.locale, self.locale)
        serial = await terminal_serial(done.session, followup.terminal_id)
        text = t(
            "calls.number",
            number=followup.id,
            merchant=merchant.name,
            phone=merchant.phone,
            kind=t(f"followup.kind.{followup.kind}"),
            serial=serial or t("staff.none"),
            due=local_minute(followup.window_end, self.zone),
        )
        keyboard = inline_keyboard([[(t("calls.button.record"), CallTask(followup.id, "record"))]])
        done.say(conversation.chat_id, text_payload(text, keyboard), purpose="phone")
        done.audit(member.user_id, "phone_revealed", f"followup:{followup.id}", chat=action.chat_id)
        await self._mark_task(done, followup, self.t("calls.taken", who=member.name, at=self._stamp(done)), keep=True)
        done.callback_text, done.alert = self.t("case.phone_sent"), True

    # ---- record the answers ------------------------------------------------------------------------------

    async def record(
        self, done: UpdateWork, action: StaffAction, member: Member, followup: FollowUp, merchant: Merchant
    ) -> None:
        """The survey form, in the staff member's direct chat, filled in on the merchant's behalf."""
        if action.chat_id != member.user_id:
            # Answers typed in the group would be read by everyone and taken by no one.
            done.callback_text, done.alert = self.t("calls.record_privately"), True
            return
        followup.handled_by = member.user_id
        conversation = await self._direct_chat(done, member, action)
        turn = Turn(
            done,
            conversation,
            Incoming(
                user_id=member.user_id,
                chat_id=conversation.chat_id,
                kind="button",
                update_id=action.update_id,
                message_id=action.message_id,
            ),
            Translator(conversation.locale, self.locale),
            self.zone,
            StaffChat(self.staff_chat_id, self.t),
        )
        turn.say_text("calls.recording", merchant=merchant.name, title=turn.t(f"form.{followup.form_key}.title"))
        await done.session.refresh(merchant, ["terminals"])
        context = {"terminals": [t.serial for t in merchant.terminals], "phone": merchant.phone}
        await self.dialogues.start_form(turn, followup.form_key, context, followup_id=followup.id)
        submission = await done.session.get(Submission, conversation.submission_id)
        assert submission is not None
        # The merchant's answers, given by phone: the operator is who wrote them down.
        submission.merchant_id = merchant.id
        submission.method = "phone"
        submission.operator_id = member.user_id

    async def on_submitted(self, turn: Turn, form: Form, submission: Submission, answers: dict[str, Any]) -> None:
        """Phoned answers in: the operator hears it is done, the group's task says so and loses its buttons."""
        if submission.method != "phone" or submission.followup_id is None:
            return
        followup = await turn.session.get(FollowUp, submission.followup_id)
        merchant = await turn.session.get(Merchant, submission.merchant_id) if submission.merchant_id else None
        if followup is None or merchant is None:
            return
        turn.say_text("calls.recorded", merchant=merchant.name, number=followup.id)
        who = await staff_name(turn.session, submission.operator_id or turn.conversation.telegram_user_id)
        line = self.t(
            "calls.done", who=who, at=self._stamp(turn.work), outcome=self.t(f"calls.outcome.{followup.outcome}")
        )
        await self._mark_task(turn.work, followup, line, keep=False)

    # ---- helpers -------------------------------------------------------------------------------------------

    async def _direct_chat(self, done: UpdateWork, member: Member, action: StaffAction) -> Conversation:
        """The staff member's own conversation with the bot (their direct chat's id is their user id)."""
        conversation = await done.session.get(Conversation, member.user_id)
        if conversation is None:
            conversation = Conversation(
                telegram_user_id=member.user_id,
                chat_id=member.user_id,
                locale=locale_for(action.language_code, self.locale),
                locale_chosen=False,
                updated_at=done.now,
            )
            done.session.add(conversation)
            await done.session.flush()
        return conversation

    async def _mark_task(self, work: UpdateWork, followup: FollowUp, line: str, *, keep: bool) -> None:
        """Edit the call task in the group: its text plus `line`, its buttons kept or gone."""
        if self.staff_chat_id is None:
            return
        found = await work.session.execute(
            select(OutboxMessage)
            .where(
                OutboxMessage.followup_id == followup.id,
                OutboxMessage.purpose == "escalation",
                OutboxMessage.chat_id == self.staff_chat_id,
            )
            .order_by(OutboxMessage.id.desc())
        )
        task = found.scalars().first()
        if task is None or task.message_id is None:
            return
        payload = text_payload(
            f"{task.payload.get('text')}\n\n{line}", task.payload.get("reply_markup") if keep else None
        )
        payload["edit_message_id"] = task.message_id
        work.say(self.staff_chat_id, payload, purpose="staff")

    def _stamp(self, work: UpdateWork) -> str:
        return work.now.astimezone(self.zone).strftime("%m-%d %H:%M")


async def staff_name(session: AsyncSession, user_id: int) -> str:
    found = await session.execute(select(Staff.name).where(Staff.telegram_user_id == user_id))
    return found.scalar_one_or_none() or str(user_id)
