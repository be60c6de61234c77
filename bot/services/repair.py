"""The repair report's consequences: the ticket, its audit trail, the merchant's answer, staff's notice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.dialogs.engine import Text, describe
from bot.dialogs.schema import Form
from bot.domain.privacy import mask_phone
from bot.services.dialogues import Dialogues
from bot.services.registry import Registry
from bot.services.render import REMOVE_KEYBOARD, text_payload
from bot.services.turn import Turn
from bot.storage.models import Attachment, Submission, Terminal, Ticket, TicketEvent

# Called when a report closes as resolved (fixed by the tips); follow-ups plug in here.
RepairResolved = Callable[[Turn, Ticket], Awaitable[None]]


def ticket_number(kind: str, year: int, ticket_id: int) -> str:
    prefix = {"repair": "R", "complaint": "C"}[kind]
    return f"{prefix}-{year}-{ticket_id:06d}"


class RepairReports:
    def __init__(self, dialogues: Dialogues, zone: ZoneInfo) -> None:
        self.dialogues = dialogues
        self.zone = zone
        self.on_resolved: list[RepairResolved] = []

    def register(self, registry: Registry) -> None:
        registry.command("repair", self.report)
        registry.outcome("repair_ticket", self.create_ticket)

    async def report(self, turn: Turn) -> None:
        await self.dialogues.offer_form(turn, "repair")

    async def create_ticket(self, turn: Turn, form: Form, submission: Submission, answers: dict[str, Any]) -> None:
        session = turn.session
        now = turn.now
        merchant = await turn.merchant()
        serial = answers.get("terminal")
        terminal = None
        if serial:
            found = await session.execute(select(Terminal).where(Terminal.serial == serial))
            terminal = found.scalar_one_or_none()
        fixed = answers.get("fixed") is True
        visit = answers.get("visit_time")
        ticket = Ticket(
            kind="repair",
            status="resolved" if fixed else "new",
            merchant_id=merchant.id if merchant else None,
            telegram_user_id=turn.conversation.telegram_user_id,
            terminal_id=terminal.id if terminal else None,
            serial=serial,
            # Staff must check who this is before sending an engineer: unknown chat, or a terminal
            # that is not on this merchant's books.
            unverified=merchant is None or terminal is None or terminal.merchant_id != merchant.id,
            category=answers.get("category"),
            severity="normal" if answers.get("can_take_payments", True) else "urgent",
            description=answers.get("description"),
            contact_phone=answers.get("phone"),
            preferred_visit_at=datetime.fromisoformat(visit) if visit else None,
            submission_id=submission.id,
            created_at=now,
            resolved_at=now if fixed else None,
            resolution_method="remote" if fixed else None,
        )
        session.add(ticket)
        await session.flush()
        ticket.number = ticket_number("repair", now.astimezone(self.zone).year, ticket.id)
        actor = f"merchant:{turn.conversation.telegram_user_id}"
        session.add(
            TicketEvent(
                ticket_id=ticket.id, at=now, actor=actor, action="created", detail={"submission": submission.id}
            )
        )
        if fixed:
            session.add(
                TicketEvent(ticket_id=ticket.id, at=now, actor=actor, action="resolved", detail={"method": "remote"})
            )
        await session.execute(
            update(Attachment).where(Attachment.submission_id == submission.id).values(ticket_id=ticket.id)
        )
        self._tell_merchant(turn, ticket, fixed)
        self._tell_staff(turn, form, ticket, answers, merchant.name if merchant else None)
        if fixed:
            for hook in self.on_resolved:
                await hook(turn, ticket)

    def _tell_merchant(self, turn: Turn, ticket: Ticket, fixed: bool) -> None:
        lines = []
        if fixed:
            lines.append(turn.t("repair.created_remote", number=ticket.number))
        else:
            visit = (
                ticket.preferred_visit_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")
                if ticket.preferred_visit_at
                else turn.t("staff.none")
            )
            lines.append(
                turn.t("repair.created_visit", number=ticket.number, phone=ticket.contact_phone or "", visit=visit)
            )
        if ticket.unverified:
            lines.append(turn.t("repair.unverified_note"))
        turn.say(text_payload("\n".join(lines), REMOVE_KEYBOARD))

    def _tell_staff(
        self, turn: Turn, form: Form, ticket: Ticket, answers: dict[str, Any], merchant_name: str | None
    ) -> None:
        none = Text("staff.none")
        who: Any = merchant_name or none
        if ticket.unverified:
            who = Text(
                "answer.list",
                {
                    "items": [
                        merchant_name or none,
                        Text("staff.unverified", {"user": turn.conversation.telegram_user_id}),
                    ]
                },
            )
        photos = answers.get("photos")
        if ticket.status == "resolved":
            text = Text(
                "staff.remote_fixed",
                {
                    "number": ticket.number,
                    "merchant": who,
                    "serial": ticket.serial or none,
                    "category": describe(form, form.step("category"), ticket.category),
                },
            )
        else:
            visit = ticket.preferred_visit_at
            text = Text(
                "staff.new_repair",
                {
                    "number": ticket.number,
                    "merchant": who,
                    "serial": ticket.serial or none,
                    "category": describe(form, form.step("category"), ticket.category),
                    "can_pay": describe(form, form.step("can_take_payments"), answers.get("can_take_payments")),
                    "urgent": Text("staff.urgent") if ticket.severity == "urgent" else "",
                    "description": ticket.description or none,
                    "photos": len(photos) if photos else 0,
                    "visit": visit.astimezone(self.zone).strftime("%Y-%m-%d %H:%M") if visit else none,
                    # Staff see the least needed: the phone is masked in the group.
                    "phone": mask_phone(ticket.contact_phone) or none,
                },
            )
        turn.say_to_staff(text)
