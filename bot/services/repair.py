"""The repair report's consequences: the ticket, the merchant's answer, and the case it opens for staff."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.dialogs.schema import Form
from bot.domain.cases import severity_for
from bot.services.cases import CaseDesk
from bot.services.dialogues import Dialogues
from bot.services.registry import Registry
from bot.services.render import REMOVE_KEYBOARD, local_minute, text_payload
from bot.services.turn import Turn
from bot.storage.models import Submission, Terminal, Ticket, TicketEvent


class RepairReports:
    def __init__(self, dialogues: Dialogues, cases: CaseDesk, zone: ZoneInfo) -> None:
        self.dialogues = dialogues
        self.cases = cases
        self.zone = zone

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
            severity=severity_for(answers.get("can_take_payments")),
            description=answers.get("description"),
            contact_phone=answers.get("phone"),
            preferred_visit_at=datetime.fromisoformat(visit) if visit else None,
            submission_id=submission.id,
            created_at=now,
            resolved_at=now if fixed else None,
            resolution_method="remote" if fixed else None,
            reopen_count=0,
        )
        actor = f"merchant:{turn.conversation.telegram_user_id}"
        await self.cases.open(
            turn.work, ticket, actor=actor, detail={"submission": submission.id}, evidence_from=submission.id
        )
        if fixed:
            session.add(
                TicketEvent(ticket_id=ticket.id, at=now, actor=actor, action="resolved", detail={"method": "remote"})
            )
        self._tell_merchant(turn, ticket, fixed)
        if fixed:
            for hook in self.cases.on_resolved:
                await hook(turn.work, ticket)

    def _tell_merchant(self, turn: Turn, ticket: Ticket, fixed: bool) -> None:
        lines = []
        if fixed:
            lines.append(turn.t("repair.created_remote", number=ticket.number))
        else:
            visit = (
                local_minute(ticket.preferred_visit_at, self.zone)
                if ticket.preferred_visit_at
                else turn.t("staff.none")
            )
            lines.append(
                turn.t("repair.created_visit", number=ticket.number, phone=ticket.contact_phone or "", visit=visit)
            )
        if ticket.unverified:
            lines.append(turn.t("repair.unverified_note"))
        turn.say(text_payload("\n".join(lines), REMOVE_KEYBOARD))
