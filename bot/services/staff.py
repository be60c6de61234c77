"""The staff group's side: /install, and recording how a follow-up call went.

Only the staff chat's members (anyone who can post there) and `ADMIN_IDS` may act;
anyone else is refused and nothing changes. Every action is one transaction with
its update id, like the merchants' side.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy
from bot.i18n import Translator, locale_for
from bot.services.installations import InstallationError, parse_install_args, register_installation
from bot.services.render import text_payload
from bot.storage.models import FollowUp, Merchant, OutboxMessage, ProcessedUpdate

log = logging.getLogger("posbot.staff")
T = TypeVar("T")


@dataclass
class StaffAction:
    """Who pressed or typed what, where."""

    update_id: int | None
    chat_id: int
    user_id: int
    user_name: str
    message_id: int | None = None
    language_code: str | None = None


@dataclass
class StaffOutcome:
    outbox_ids: list[int] = field(default_factory=list)
    callback_text: str | None = None
    duplicate: bool = False


class StaffDesk:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        policy: FollowUpPolicy,
        calendar: WorkCalendar,
        *,
        staff_chat_id: int | None,
        admin_ids: frozenset[int] = frozenset(),
        locale: str = "zh_CN",
        zone: ZoneInfo | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.policy = policy
        self.calendar = calendar
        self.staff_chat_id = staff_chat_id
        self.admin_ids = admin_ids
        self.t = Translator(locale)
        self.zone = zone or ZoneInfo(policy.timezone)

    def allowed(self, action: StaffAction) -> bool:
        return action.chat_id == self.staff_chat_id or action.user_id in self.admin_ids

    async def _in_update(
        self, action: StaffAction, work: Callable[[AsyncSession, list[OutboxMessage]], Awaitable[T]]
    ) -> tuple[T | None, list[int], bool]:
        """Run `work` in one transaction with the update id; a repeated update does nothing."""
        outbox: list[OutboxMessage] = []
        try:
            async with self.sessions() as session, session.begin():
                if action.update_id is not None:
                    session.add(ProcessedUpdate(update_id=action.update_id, processed_at=self.clock.now()))
                    await session.flush()
                result = await work(session, outbox)
                for message in outbox:
                    session.add(message)
                await session.flush()
        except IntegrityError:
            if action.update_id is not None and await self._seen(action.update_id):
                return None, [], True
            raise
        return result, [m.id for m in outbox], False

    async def _seen(self, update_id: int) -> bool:
        async with self.sessions() as session:
            return await session.get(ProcessedUpdate, update_id) is not None

    def _reply(self, action: StaffAction, text: str, **extra: Any) -> OutboxMessage:
        payload = text_payload(text)
        payload.update(extra)
        return OutboxMessage(
            chat_id=action.chat_id,
            payload=payload,
            purpose="staff",
            status="pending",
            attempts=0,
            created_at=self.clock.now(),
        )

    # ---- /install ----------------------------------------------------------------------------------

    async def install(self, action: StaffAction, args: str) -> StaffOutcome:
        if not self.allowed(action):
            return await self._refuse(action)

        async def work(session: AsyncSession, outbox: list[OutboxMessage]) -> None:
            now = self.clock.now()
            try:
                request = parse_install_args(args, self.zone, now)
                installed = await register_installation(session, request, self.policy, self.calendar, now)
            except InstallationError as exc:
                outbox.append(self._reply(action, self.t(exc.key, **exc.params)))
                return
            dates = ", ".join(
                f.send_at.astimezone(self.zone).strftime("%m-%d") for f in installed.plan.created
            ) or self.t("staff.none")
            key = "install.done" if installed.changed else "install.already"
            outbox.append(
                self._reply(
                    action,
                    self.t(key, serial=installed.terminal.serial, merchant=installed.merchant.name, dates=dates),
                )
            )

        return await self._outcome(action, work)

    async def _refuse(self, action: StaffAction) -> StaffOutcome:
        log.warning("user %s tried a staff action outside the staff chat", action.user_id)
        refusal = OutboxMessage(
            chat_id=action.chat_id,
            # Said in the person's own language: they are not in the staff group.
            payload=text_payload(Translator(locale_for(action.language_code, self.t.locale))("install.not_staff")),
            purpose="reply",
            status="pending",
            attempts=0,
            created_at=self.clock.now(),
        )

        async def work(session: AsyncSession, outbox: list[OutboxMessage]) -> None:
            outbox.append(refusal)

        return await self._outcome(action, work)

    async def _outcome(
        self, action: StaffAction, work: Callable[[AsyncSession, list[OutboxMessage]], Awaitable[None]]
    ) -> StaffOutcome:
        _, ids, duplicate = await self._in_update(action, work)
        return StaffOutcome(ids, None, duplicate)

    # ---- follow-up call outcomes ---------------------------------------------------------------------

    async def record_call(self, action: StaffAction, followup_id: int, result: str) -> StaffOutcome:
        """A staff member pressed "reached" or "not reached" on an escalation."""
        if not self.allowed(action) or result not in ("reached", "unreached"):
            return StaffOutcome(callback_text=self.t("install.not_staff"))
        callback: list[str] = []

        async def work(session: AsyncSession, outbox: list[OutboxMessage]) -> None:
            followup = await session.get(FollowUp, followup_id)
            if followup is None or followup.status not in ("escalated", "called"):
                callback.append(self.t("error.stale_button"))
                return
            followup.status = "called"
            followup.outcome = "reached" if result == "reached" else "not_reached"
            stamp = self.clock.now().astimezone(self.zone).strftime("%m-%d %H:%M")
            by = self.t(
                "staff_followups.call_recorded",
                who=action.user_name,
                at=stamp,
                outcome=self.t(f"staff.call.{followup.outcome}"),
            )
            followup.note = _append(followup.note, by)
            merchant = await session.get(Merchant, followup.merchant_id)
            if merchant is not None and followup.outcome == "reached":
                merchant.unreachable = False
            callback.append(self.t(f"staff.call.{followup.outcome}"))
            if action.message_id is not None:
                original = await self._escalation_text(session, action.chat_id, action.message_id)
                if original is not None:
                    # The task stays readable in the group, with who handled it and no buttons left.
                    outbox.append(self._reply(action, original + "\n\n" + by, edit_message_id=action.message_id))
            outbox.append(self._reply(action, self.t("staff_followups.note_hint")))

        _, ids, duplicate = await self._in_update(action, work)
        return StaffOutcome(ids, callback[0] if callback else None, duplicate)

    async def add_note(self, action: StaffAction, reply_to_message_id: int, text: str) -> StaffOutcome | None:
        """A reply to an escalation message is the call's note. Other group chatter is not ours."""
        if not self.allowed(action):
            return None
        found: list[bool] = []

        async def work(session: AsyncSession, outbox: list[OutboxMessage]) -> None:
            row = await self._escalation_row(session, action.chat_id, reply_to_message_id)
            if row is None or row.followup_id is None:
                return
            followup = await session.get(FollowUp, row.followup_id)
            if followup is None:
                return
            followup.note = _append(followup.note, f"{action.user_name}: {text.strip()[:500]}")
            found.append(True)
            outbox.append(self._reply(action, self.t("staff_followups.note_saved")))

        _, ids, duplicate = await self._in_update(action, work)
        if not found and not duplicate:
            return None
        return StaffOutcome(ids, None, duplicate)

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
