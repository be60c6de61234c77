"""The staff group's side: /install, and recording how a follow-up call went.

Only staff (`bot/services/team.py`) may act; anyone else is refused and nothing
changes. Every action is one transaction with its update id, like the merchants' side.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import CallOutcome
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy
from bot.i18n import Translator
from bot.services.installations import InstallationError, parse_install_args, register_installation
from bot.services.registry import Registry
from bot.services.render import text_payload
from bot.services.team import Team
from bot.services.turn import Member, StaffAction
from bot.services.updates import Updates, UpdateWork
from bot.storage.models import FollowUp, Merchant, OutboxMessage

log = logging.getLogger("posbot.staff")


class StaffDesk:
    def __init__(
        self,
        updates: Updates,
        team: Team,
        policy: FollowUpPolicy,
        calendar: WorkCalendar,
        *,
        locale: str = "zh_CN",
        zone: ZoneInfo | None = None,
    ) -> None:
        self.updates = updates
        self.team = team
        self.policy = policy
        self.calendar = calendar
        self.t = Translator(locale)
        self.zone = zone or ZoneInfo(policy.timezone)

    def register(self, registry: Registry) -> None:
        registry.staff_command("install", self.team.command(self.install))
        registry.staff_button(CallOutcome, self.team.button(self.record_call))
        registry.staff_reply(self.add_note)

    def _reply(self, work: UpdateWork, action: StaffAction, text: str, **extra: Any) -> None:
        payload = text_payload(text)
        payload.update(extra)
        work.say(action.chat_id, payload, purpose="staff")

    # ---- /install ----------------------------------------------------------------------------------

    async def install(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        try:
            request = parse_install_args(args, self.zone, done.now)
            installed = await register_installation(done.session, request, self.policy, self.calendar, done.now)
        except InstallationError as exc:
            self._reply(done, action, self.t(exc.key, **exc.params))
            return
        dates = ", ".join(f.send_at.astimezone(self.zone).strftime("%m-%d") for f in installed.plan.created) or self.t(
            "staff.none"
        )
        key = "install.done" if installed.changed else "install.already"
        self._reply(
            done,
            action,
            self.t(key, serial=installed.terminal.serial, merchant=installed.merchant.name, dates=dates),
        )

    # ---- follow-up call outcomes ---------------------------------------------------------------------

    async def record_call(self, done: UpdateWork, action: StaffAction, member: Member, data: CallOutcome) -> None:
        """A staff member pressed "reached" or "not reached" on an escalation."""
        followup = await done.session.get(FollowUp, data.followup_id)
        if followup is None or followup.status not in ("escalated", "called"):
            done.callback_text = self.t("error.stale_button")
            return
        followup.status = "called"
        followup.outcome = "reached" if data.result == "reached" else "not_reached"
        followup.handled_by = member.user_id
        stamp = done.now.astimezone(self.zone).strftime("%m-%d %H:%M")
        by = self.t(
            "staff_followups.call_recorded",
            who=action.user_name,
            at=stamp,
            outcome=self.t(f"staff.call.{followup.outcome}"),
        )
        followup.note = _append(followup.note, by)
        merchant = await done.session.get(Merchant, followup.merchant_id)
        if merchant is not None and followup.outcome == "reached":
            merchant.unreachable = False
        done.callback_text = self.t(f"staff.call.{followup.outcome}")
        if action.message_id is not None:
            original = await self._escalation_text(done.session, action.chat_id, action.message_id)
            if original is not None:
                # The task stays readable in the group, with who handled it and no buttons left.
                self._reply(done, action, original + "\n\n" + by, edit_message_id=action.message_id)
        self._reply(done, action, self.t("staff_followups.note_hint"))

    async def add_note(self, done: UpdateWork, action: StaffAction, member: Member, text: str) -> bool:
        """A staff member's reply to an escalation message is the call's note."""
        if action.reply_to_message_id is None:
            return False
        row = await self._escalation_row(done.session, action.chat_id, action.reply_to_message_id)
        if row is None or row.followup_id is None:
            return False
        followup = await done.session.get(FollowUp, row.followup_id)
        if followup is None:
            return False
        followup.note = _append(followup.note, f"{action.user_name}: {text.strip()[:500]}")
        self._reply(done, action, self.t("staff_followups.note_saved"))
        return True

    async def _escalation_row(self, session: AsyncSession, chat_id: int, message_id: int) -> OutboxMessage | None:
        found = await session.execute(
            select(OutboxMessage).where(
                OutboxMessage.chat_id == chat_id,
                OutboxMessage.message_id == message_id,
                OutboxMessage.purpose == "escalation",
            )
        )
        return found.scalars().first()

    async def _escalation_text(self, session: AsyncSession, chat_id: int, message_id: int) -> str | None:
        row = await self._escalation_row(session, chat_id, message_id)
        return str(row.payload.get("text")) if row is not None else None


def _append(note: str | None, line: str) -> str:
    return f"{note}\n{line}" if note else line
