"""The staff desk's typed commands: /ticket, /open, /mine, /find and /newticket.

Each goes through the staff gate (`Team.command`): anyone else is refused and audited.
Answers are written in the group's language, with phone numbers masked; in a private chat
with the bot a staff member sees a merchant's full number from /find, and that is audited
like the case message's "Call merchant". /newticket registers a repair reported by phone
(DOMAIN "intake from several channels") and hands it to the case desk, so it follows the
same lifecycle as a report made in the chat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.cases import LEGACY_STATES, OPEN_STATES, canonical_severity, canonical_state
from bot.domain.phones import normalize_phone
from bot.domain.privacy import mask_numbers, mask_phone
from bot.i18n import Translator, catalog
from bot.services.cases import NUMBER_PREFIX, CaseDesk
from bot.services.registry import Registry
from bot.services.render import local_minute, text_payload
from bot.services.team import Team
from bot.services.turn import Member, StaffAction
from bot.services.updates import UpdateWork
from bot.storage.models import Merchant, Staff, Terminal, Ticket, TicketEvent

# One answer stays well inside Telegram's 4096 characters.
LIST_LIMIT = 30
FIND_LIMIT = 10
TIMELINE_LIMIT = 40
# The stored statuses that mean "open" (the legacy "open" included).
OPEN_STORED = tuple(sorted({*OPEN_STATES, *(k for k, v in LEGACY_STATES.items() if v in OPEN_STATES)}))
_NUMBER = re.compile(r"^([A-Z])-(\d{4})-(\d{1,9})$")
_SERIAL = re.compile(r"^[A-Z0-9][A-Z0-9\-]{2,31}$")
# /newticket's description may start with a mark for the severity: "!" cannot take payments, "~" partly.
SEVERITY_MARKS = {"!": "urgent", "~": "partial"}


def parse_case_reference(text: str) -> tuple[str, str | int] | None:
    """`R-2026-000012` (any case, zeros optional) -> ("number", "R-2026-000012"); `12` or `#12` -> ("id", 12)."""
    word = text.strip().upper()
    found = _NUMBER.match(word)
    if found and found.group(1) in NUMBER_PREFIX.values():
        return "number", f"{found.group(1)}-{found.group(2)}-{int(found.group(3)):06d}"
    bare = word.removeprefix("#")
    if bare.isascii() and bare.isdigit() and len(bare) <= 12:
        return "id", int(bare)
    return None


def urgent_deadline() -> ColumnElement[Any]:
    """The earliest deadline still to meet: the response one while nobody has answered, else resolution."""
    respond_first = and_(
        Ticket.first_response_at.is_(None),
        Ticket.respond_due_at.is_not(None),
        or_(Ticket.sla_due_at.is_(None), Ticket.respond_due_at < Ticket.sla_due_at),
    )
    return case((respond_first, Ticket.respond_due_at), else_=Ticket.sla_due_at)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DeskCommands:
    def __init__(self, team: Team, cases: CaseDesk, zone: ZoneInfo, locale: str = "zh_CN") -> None:
        self.team = team
        self.cases = cases
        self.zone = zone
        self.t = Translator(locale)

    def register(self, registry: Registry) -> None:
        registry.staff_command("ticket", self.team.command(self.ticket))
        registry.staff_command("open", self.team.command(self.open_cases))
        registry.staff_command("mine", self.team.command(self.mine))
        registry.staff_command("find", self.team.command(self.find))
        registry.staff_command("newticket", self.team.command(self.new_ticket))

    def _reply(self, done: UpdateWork, action: StaffAction, text: str) -> None:
        done.say(action.chat_id, text_payload(text), purpose="staff")

    def _moment(self, at: datetime) -> str:
        return local_minute(at, self.zone)

    # ---- /ticket <number> ------------------------------------------------------------------------------

    async def ticket(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        reference = parse_case_reference(args)
        if reference is None:
            self._reply(done, action, self.t("desk.usage.ticket"))
            return
        how, value = reference
        if how == "number":
            found = await done.session.execute(select(Ticket).where(Ticket.number == value))
            ticket = found.scalar_one_or_none()
        else:
            ticket = await done.session.get(Ticket, value)
        if ticket is None:
            self._reply(done, action, self.t("desk.ticket.not_found", number=args.strip()[:30]))
            return
        details = (await self.cases.render(done.session, ticket))["text"]
        self._reply(done, action, f"{details}\n\n{await self._timeline(done.session, ticket)}")

    async def _timeline(self, session: AsyncSession, ticket: Ticket) -> str:
        rows = await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.at, TicketEvent.id)
        )
        events = list(rows.scalars())
        staff_ids = {int(e.actor[6:]) for e in events if e.actor.startswith("staff:") and e.actor[6:].isdigit()}
        staff_ids |= {e.detail["assignee"] for e in events if isinstance(e.detail.get("assignee"), int)}
        names: dict[int, str] = {}
        if staff_ids:
            found = await session.execute(
                select(Staff.telegram_user_id, Staff.name).where(Staff.telegram_user_id.in_(staff_ids))
            )
            names = {user: name for user, name in found.all()}
        lines = [self.t("desk.timeline.header")]
        if len(events) > TIMELINE_LIMIT:
            lines.append(self.t("desk.timeline.earlier", count=len(events) - TIMELINE_LIMIT))
            events = events[-TIMELINE_LIMIT:]
        known = catalog(self.t.locale)
        for event in events:
            what = f"desk.event.{event.action}"
            line = self.t(
                "desk.timeline.line",
                at=self._moment(event.at),
                who=self._who(event.actor, names),
                what=self.t(what) if what in known else event.action,
            )
            if isinstance(event.detail.get("assignee"), int):
                line += " → " + names.get(event.detail["assignee"], str(event.detail["assignee"]))
            if event.detail.get("channel") == "phone":
                line += " " + self.t("desk.timeline.by_phone")
            note = event.detail.get("note") or event.detail.get("reason")
            if note:
                line += "\n    " + self.t("desk.timeline.note", text=mask_numbers(str(note))[:300])
            lines.append(line)
        return "\n".join(lines)

    def _who(self, actor: str, names: dict[int, str]) -> str:
        kind, _, ident = actor.partition(":")
        if kind == "staff" and ident.isdigit():
            return names.get(int(ident), self.t("desk.who.staff", user=ident))
        if kind == "merchant":
            return self.t("desk.who.merchant")
        return self.t("desk.who.system")

    # ---- /open and /mine ---------------------------------------------------------------------------------

    async def open_cases(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        await self._case_list(done, action, [], "desk.open")

    async def mine(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        mine = Ticket.assignee_id.in_(select(Staff.id).where(Staff.telegram_user_id == member.user_id))
        await self._case_list(done, action, [mine], "desk.mine")

    async def _case_list(
        self, done: UpdateWork, action: StaffAction, where: Sequence[ColumnElement[bool]], key: str
    ) -> None:
        condition = and_(Ticket.status.in_(OPEN_STORED), *where)
        total = (await done.session.execute(select(func.count(Ticket.id)).where(condition))).scalar_one()
        if not total:
            self._reply(done, action, self.t(f"{key}.none"))
            return
        deadline = urgent_deadline()
        query = (
            select(Ticket, Staff.name)
            .outerjoin(Staff, Staff.id == Ticket.assignee_id)
            .where(condition)
            .order_by(deadline.is_(None), deadline, Ticket.id)
            .limit(LIST_LIMIT)
        )
        rows = (await done.session.execute(query)).all()
        lines = [self.t(f"{key}.header", count=total)]
        lines += [self._case_line(ticket, assignee, done.now) for ticket, assignee in rows]
        if total > len(rows):
            lines.append(self.t("desk.more", count=total - len(rows)))
        self._reply(done, action, "\n".join(lines))

    def _case_line(self, ticket: Ticket, assignee: str | None, now: datetime) -> str:
        try:
            severity = canonical_severity(ticket.severity)
        except ValueError:
            severity = "normal"
        return self.t(
            "desk.case_line",
            mark=self.t(f"desk.mark.{severity}"),
            number=ticket.number or f"#{ticket.id}",
            state=self.t(f"ticket_status.{canonical_state(ticket.status)}"),
            assignee=assignee or self.t("desk.unassigned"),
            deadline=self._deadline_text(ticket, now),
        )

    def _deadline_text(self, ticket: Ticket, now: datetime) -> str:
        respond = ticket.respond_due_at if ticket.first_response_at is None else None
        if respond is not None and (ticket.sla_due_at is None or respond < ticket.sla_due_at):
            which, at = "respond", respond
        elif ticket.sla_due_at is not None:
            which, at = "resolve", ticket.sla_due_at
        else:
            return self.t("desk.deadline.none")
        text = self.t(f"desk.deadline.{which}", at=self._moment(at))
        return self.t("desk.deadline.overdue", deadline=text) if at <= now else text

    # ---- /find <phone | serial | name> -------------------------------------------------------------------

    async def find(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        query = " ".join(args.split())[:100]
        if len(query) < 2:
            self._reply(done, action, self.t("desk.usage.find"))
            return
        session = done.session
        matches: list[ColumnElement[bool]] = [Merchant.name.ilike(f"%{_like(query)}%", escape="\\")]
        phone = normalize_phone(query)
        if phone is not None:
            matches.append(Merchant.phone == phone)
        serial = query.upper()
        if _SERIAL.match(serial):
            by_serial = select(Terminal.merchant_id).where(
                or_(Terminal.serial == serial, Terminal.serial.like(f"{_like(serial)}%", escape="\\"))
            )
            matches.append(Merchant.id.in_(by_serial))
        condition = or_(*matches)
        total = (await session.execute(select(func.count(Merchant.id)).where(condition))).scalar_one()
        if not total:
            self._reply(done, action, self.t("desk.find.none", query=mask_numbers(query)))
            return
        listed = select(Merchant).where(condition).order_by(Merchant.name, Merchant.id).limit(FIND_LIMIT)
        merchants = list((await session.execute(listed)).scalars())
        ids = [m.id for m in merchants]
        terminals: dict[int, list[str]] = {}
        owned = select(Terminal.merchant_id, Terminal.serial).where(Terminal.merchant_id.in_(ids))
        for merchant_id, found_serial in (await session.execute(owned.order_by(Terminal.serial))).all():
            terminals.setdefault(merchant_id, []).append(found_serial)
        cases: dict[int, list[str]] = {}
        deadline = urgent_deadline()
        open_rows = await session.execute(
            select(Ticket, Staff.name)
            .outerjoin(Staff, Staff.id == Ticket.assignee_id)
            .where(Ticket.merchant_id.in_(ids), Ticket.status.in_(OPEN_STORED))
            .order_by(deadline.is_(None), deadline, Ticket.id)
        )
        for ticket, assignee in open_rows.all():
            assert ticket.merchant_id is not None
            cases.setdefault(ticket.merchant_id, []).append(self._case_line(ticket, assignee, done.now))
        # The full number only in a private chat with the bot, and who saw it is recorded.
        reveal = action.private
        lines = [self.t("desk.find.header", query=mask_numbers(query), count=total)]
        for merchant in merchants:
            shown = merchant.phone if reveal else mask_phone(merchant.phone)
            lines.append(
                self.t(
                    "desk.find.merchant",
                    name=merchant.name,
                    phone=shown or self.t("staff.none"),
                    terminals=", ".join(terminals.get(merchant.id, [])) or self.t("staff.none"),
                )
            )
            lines += [f"    {line}" for line in cases.get(merchant.id, [])] or ["    " + self.t("desk.find.no_cases")]
            if reveal and merchant.phone:
                done.audit(member.user_id, "phone_revealed", f"merchant:{merchant.id}", chat=action.chat_id, via="find")
        if total > len(merchants):
            lines.append(self.t("desk.more", count=total - len(merchants)))
        self._reply(done, action, "\n".join(lines))

    # ---- /newticket <phone | serial> <description> ----------------------------------------------------

    async def new_ticket(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        who, _, description = args.strip().partition(" ")
        description = description.strip()
        severity = SEVERITY_MARKS.get(description[:1], "normal")
        if severity != "normal":
            description = description[1:].strip()
        if not who or not description:
            self._reply(done, action, self.t("desk.usage.newticket"))
            return
        session = done.session
        terminal = (await session.execute(select(Terminal).where(Terminal.serial == who.upper()))).scalar_one_or_none()
        if terminal is not None:
            merchant = await session.get(Merchant, terminal.merchant_id)
        else:
            phone = normalize_phone(who)
            if phone is None:
                self._reply(done, action, self.t("desk.newticket.unknown", who=mask_numbers(who[:40])))
                return
            found = list((await session.execute(select(Merchant).where(Merchant.phone == phone).limit(2))).scalars())
            if len(found) != 1:
                key = "desk.newticket.ambiguous" if found else "desk.newticket.unknown"
                self._reply(done, action, self.t(key, who=mask_phone(phone)))
                return
            merchant = found[0]
            owned = list((await session.execute(select(Terminal).where(Terminal.merchant_id == merchant.id))).scalars())
            terminal = owned[0] if len(owned) == 1 else None
        assert merchant is not None
        ticket = Ticket(
            kind="repair",
            status="new",
            merchant_id=merchant.id,
            telegram_user_id=merchant.telegram_user_id,
            terminal_id=terminal.id if terminal else None,
            serial=terminal.serial if terminal else None,
            unverified=False,
            severity=severity,
            description=description[:2000],
            contact_phone=merchant.phone,
            created_at=done.now,
            reopen_count=0,
        )
        await self.cases.open(done, ticket, actor=f"staff:{member.user_id}", detail={"channel": "phone"})
        await self.cases.tell_merchant(done, ticket, "desk.newticket.told")
        self._reply(done, action, self.t("desk.newticket.opened", number=ticket.number, merchant=merchant.name))
