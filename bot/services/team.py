"""Who is staff, in which role, and the one gate every staff command and button goes through.

Staff are `ADMIN_IDS` (supervisors by right) and the people an admin adds with
`/staff add`, each with a role: customer service, after-sales, sales or supervisor.
Being in the staff group grants nothing by itself. Anyone else who types a staff
command or presses a staff button is refused with a short alert in their own
language, and the attempt is written to the audit table in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import CallbackData
from bot.delivery.outcome import Outcome
from bot.i18n import Translator, locale_for
from bot.services.registry import Registry, StaffCommand
from bot.services.render import text_payload
from bot.services.turn import Member, StaffAction
from bot.services.updates import Updates, UpdateWork
from bot.storage.models import Staff

log = logging.getLogger("posbot.team")

ROLES = ("service", "aftersales", "sales", "supervisor")
# What people type for a role, in either language.
ROLE_NAMES = {
    "service": "service",
    "cs": "service",
    "客服": "service",
    "aftersales": "aftersales",
    "after-sales": "aftersales",
    "售后": "aftersales",
    "sales": "sales",
    "销售": "sales",
    "supervisor": "supervisor",
    "主管": "supervisor",
}

B = TypeVar("B", bound=CallbackData)


CommandBody = Callable[[UpdateWork, StaffAction, Member, str], Awaitable[None]]
ButtonBody = Callable[[UpdateWork, StaffAction, Member, B], Awaitable[None]]


async def find_member(session: AsyncSession, user_id: int, admin_ids: frozenset[int]) -> Member | None:
    staff = (await session.execute(select(Staff).where(Staff.telegram_user_id == user_id))).scalar_one_or_none()
    if staff is not None and staff.active:
        return Member(user_id, staff.name, staff.role, admin=user_id in admin_ids)
    if user_id in admin_ids:
        return Member(user_id, staff.name if staff else str(user_id), "supervisor", admin=True)
    return None


async def active_supervisors(session: AsyncSession) -> list[Staff]:
    rows = await session.execute(
        select(Staff).where(Staff.active.is_(True), Staff.role == "supervisor").order_by(Staff.name, Staff.id)
    )
    return list(rows.scalars())


def utf16_length(text: str) -> int:
    """Telegram counts entity offsets in UTF-16 code units: an emoji outside the BMP counts two."""
    return len(text.encode("utf-16-le")) // 2


def mention(t: Translator, key: str, people: Sequence[Staff], *, after: str = "") -> tuple[str, list[dict[str, Any]]]:
    """The line `key` says with `{names}`, and the names as text mentions, so Telegram notifies each person
    (no username needed, no parse mode, so no markup of anyone else's can break it). The entities' offsets
    count from the start of the message, which holds `after` before this line."""
    # The names' place in the line, found by formatting around a marker the catalog cannot contain.
    before, _, rest = t(key, names="\0").partition("\0")
    separator = t.raw("list_separator")
    offset = utf16_length(after + before)
    entities: list[dict[str, Any]] = []
    for index, person in enumerate(people):
        if index:
            offset += utf16_length(separator)
        entities.append(
            {
                "type": "text_mention",
                "offset": offset,
                "length": utf16_length(person.name),
                "user": {"id": person.telegram_user_id, "is_bot": False, "first_name": person.name},
            }
        )
        offset += utf16_length(person.name)
    return before + separator.join(p.name for p in people) + rest, entities


class Team:
    def __init__(self, updates: Updates, admin_ids: frozenset[int], locale: str = "zh_CN") -> None:
        self.registry = Registry()  # the real one arrives with register()
        self.updates = updates
        self.admin_ids = admin_ids
        self.locale = locale
        self.t = Translator(locale)

    def register(self, registry: Registry) -> None:
        registry.staff_command("staff", self.command(self.manage))
        self.registry = registry

    async def reply(self, action: StaffAction, text: str) -> Outcome | None:
        """A staff member's reply to one of the bot's messages; None when it is nobody's business (chatter)."""
        taken: list[bool] = []

        async def work(done: UpdateWork) -> None:
            member = await self.member(done.session, action.user_id)
            if member is None:
                return
            for handler in self.registry.staff_replies:
                if await handler(done, action, member, text):
                    taken.append(True)
                    return

        outcome = await self.updates.run(action.update_id, work, label=f"staff {action.user_id}")
        return outcome if taken or outcome.duplicate else None

    async def member(self, session: AsyncSession, user_id: int) -> Member | None:
        return await find_member(session, user_id, self.admin_ids)

    # ---- the gate ------------------------------------------------------------------------------------

    def command(self, body: CommandBody, *, supervisor: bool = False) -> StaffCommand:
        """A staff command: run `body` for staff (supervisors only, when asked), refuse anyone else."""

        async def handler(action: StaffAction, args: str) -> Outcome:
            async def work(done: UpdateWork) -> None:
                member = await self._admit(done, action, f"command:{body.__name__}", supervisor)
                if isinstance(member, str):
                    done.say(action.chat_id, text_payload(member), purpose="staff")
                    return
                await body(done, action, member, args)

            return await self.updates.run(action.update_id, work, label=f"staff {action.user_id}")

        return handler

    def button(
        self, body: ButtonBody[B], *, supervisor: bool = False
    ) -> Callable[[StaffAction, B], Awaitable[Outcome]]:
        """A staff button: run `body` for staff, answer anyone else's press with an alert."""

        async def handler(action: StaffAction, data: B) -> Outcome:
            async def work(done: UpdateWork) -> None:
                member = await self._admit(done, action, f"button:{data.prefix}", supervisor)
                if isinstance(member, str):
                    done.callback_text, done.alert = member, True
                    return
                await body(done, action, member, data)

            return await self.updates.run(action.update_id, work, label=f"staff {action.user_id}")

        return handler

    async def _admit(self, done: UpdateWork, action: StaffAction, what: str, supervisor: bool) -> Member | str:
        """The member, or the refusal to say (and the attempt audited)."""
        member = await self.member(done.session, action.user_id)
        if member is not None and (member.supervisor or not supervisor):
            return member
        reason = "not_staff" if member is None else "not_supervisor"
        log.warning("refused %s to user %s (%s)", what, action.user_id, reason)
        done.audit(action.user_id, "refused", what, chat=action.chat_id, reason=reason)
        # Said in the person's own language: they may be a merchant who wandered in.
        return Translator(locale_for(action.language_code, self.locale))(f"team.{reason}")

    # ---- /staff add | remove | list ----------------------------------------------------------------------

    async def manage(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        t = Translator(locale_for(action.language_code, self.locale))
        verb, _, rest = args.strip().partition(" ")
        verb = verb.lower()
        if verb == "list":
            reply = await self._list(done.session, t)
        elif verb in ("add", "remove") and not member.admin:
            reply = t("team.admin_only")
            done.audit(action.user_id, "refused", f"command:staff {verb}", chat=action.chat_id, reason="not_admin")
        elif verb == "add":
            reply = await self._add(done, action, rest.split(), t)
        elif verb == "remove":
            reply = await self._remove(done, action, rest.split(), t)
        else:
            reply = t("team.usage")
        done.say(action.chat_id, text_payload(reply), purpose="staff")

    async def _add(self, done: UpdateWork, action: StaffAction, words: list[str], t: Translator) -> str:
        if action.reply_to_user_id is not None and (not words or not words[0].isascii() or not words[0].isdigit()):
            user_id, default_name = action.reply_to_user_id, action.reply_to_user_name or str(action.reply_to_user_id)
        elif words and words[0].isascii() and words[0].isdigit() and len(words[0]) <= 15:
            user_id, default_name = int(words[0]), words[0]
            words = words[1:]
        else:
            return t("team.usage")
        if not words or words[0].lower() not in ROLE_NAMES:
            return t("team.bad_role", roles=" | ".join(ROLES))
        role = ROLE_NAMES[words[0].lower()]
        name = " ".join(words[1:])[:100] or default_name[:100]
        session = done.session
        staff = (await session.execute(select(Staff).where(Staff.telegram_user_id == user_id))).scalar_one_or_none()
        if staff is None:
            staff = Staff(telegram_user_id=user_id, name=name, role=role, active=True)
            session.add(staff)
        else:
            staff.role, staff.active = role, True
            if words[1:] or staff.name == str(user_id):
                staff.name = name
        staff.added_by, staff.added_at = action.user_id, done.now
        done.audit(action.user_id, "staff_added", f"staff:{user_id}", role=role)
        return t("team.added", name=staff.name, role=t(f"role.{role}"))

    async def _remove(self, done: UpdateWork, action: StaffAction, words: list[str], t: Translator) -> str:
        if words and words[0].isascii() and words[0].isdigit() and len(words[0]) <= 15:
            user_id = int(words[0])
        elif action.reply_to_user_id is not None:
            user_id = action.reply_to_user_id
        else:
            return t("team.usage")
        session = done.session
        staff = (await session.execute(select(Staff).where(Staff.telegram_user_id == user_id))).scalar_one_or_none()
        if staff is None or not staff.active:
            return t("team.not_found", user=user_id)
        staff.active = False
        done.audit(action.user_id, "staff_removed", f"staff:{user_id}")
        return t("team.removed", name=staff.name)

    async def _list(self, session: AsyncSession, t: Translator) -> str:
        rows = await session.execute(select(Staff).where(Staff.active.is_(True)).order_by(Staff.role, Staff.name))
        lines = [t("team.list_header")]
        listed = set()
        for staff in rows.scalars():
            listed.add(staff.telegram_user_id)
            lines.append(
                t("team.list_line", name=staff.name, role=t(f"role.{staff.role}"), user=staff.telegram_user_id)
            )
        for admin in sorted(self.admin_ids - listed):
            lines.append(t("team.list_line", name=admin, role=t("role.admin"), user=admin))
        if len(lines) == 1:
            lines.append(t("team.list_empty"))
        return "\n".join(lines)
