"""The repair report through the service layer, on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Core, build_core
from bot.clock import FrozenClock
from bot.delivery.outcome import Outcome
from bot.services.merchants import add_merchant
from bot.services.turn import Incoming
from bot.storage.models import (
    Answer,
    Attachment,
    Conversation,
    OutboxMessage,
    ProcessedUpdate,
    Submission,
    Ticket,
    TicketEvent,
)
from tests.conftest import STAFF_CHAT, RecordingMessenger, linked_merchant, make_settings

USER = 5001
update_ids = itertools.count(1000)


class Merchant:
    """A merchant talking to the bot through the service, as a channel would."""

    def __init__(self, core: Core, user_id: int = USER, language: str = "en") -> None:
        self.core = core
        self.user_id = user_id
        self.language = language

    @property
    def messenger(self) -> RecordingMessenger:
        return self.core.outbox.messenger  # type: ignore[return-value]

    async def send(self, kind: str, update_id: int | None = None, **fields: Any) -> Outcome:
        incoming = Incoming(
            user_id=self.user_id,
            chat_id=self.user_id,
            kind=kind,  # type: ignore[arg-type]
            update_id=next(update_ids) if update_id is None else update_id,
            language_code=self.language,
            **fields,
        )
        outcome = await self.core.service.handle(incoming)
        await self.core.outbox.deliver(outcome.outbox_ids)
        return outcome

    async def command(self, text: str) -> Outcome:
        name, _, args = text.lstrip("/").partition(" ")
        return await self.send("command", command=name, args=args)

    async def text(self, text: str) -> Outcome:
        return await self.send("text", text=text)

    def last(self) -> dict[str, Any]:
        return [p for c, p in self.messenger.sent if c == self.user_id][-1]

    def button(self, label: str) -> str:
        for row in (self.last().get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] == label:
                    return str(button["callback_data"])
        raise AssertionError(f"no button {label!r} in {self.last()}")

    async def press(self, label: str, update_id: int | None = None) -> Outcome:
        return await self.send("button", update_id=update_id, data=self.button(label))


async def count(core: Core, model: Any, *where: Any) -> int:
    async with core.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def report_until_summary(m: Merchant, *, fixed: bool) -> None:
    await m.command("/repair")
    await m.press("Terminal AB123456")
    await m.press("Printing")
    await m.press("No")  # cannot take payments: urgent
    await m.text("paper jams after every receipt")
    await m.send("file", file_kind="photo", file_id="PHOTO-1")
    await m.press("Done")
    await m.press("Yes" if fixed else "No")
    if not fixed:
        await m.press("Tomorrow morning")
        await m.press("Use 138****5678")


async def registered(core: Core, user_id: int = USER) -> None:
    await linked_merchant(core, user_id, name="Lucky Noodles", phone="13812345678", terminals=[("AB123456", "P300")])


async def test_repair_report_with_onsite_visit_creates_ticket_answers_and_notifies_staff(core: Core) -> None:
    await registered(core)
    m = Merchant(core)
    await report_until_summary(m, fixed=False)
    assert "Please check your answers:" in m.last()["text"]
    await m.press("✅ Submit")

    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        answers = {a.question_key: a.value for a in (await session.execute(select(Answer))).scalars()}
        submission = (await session.execute(select(Submission))).scalar_one()
        attachments = list((await session.execute(select(Attachment))).scalars())
    assert ticket.number == f"R-2026-{ticket.id:06d}"
    assert (ticket.status, ticket.category, ticket.severity, ticket.unverified) == ("new", "printing", "urgent", False)
    assert ticket.contact_phone == "+8613812345678"
    assert answers["fixed"] is False and answers["category"] == "printing"
    assert answers["visit_time"] == "2026-11-25T10:00:00+08:00"
    assert (submission.status, submission.form_key, submission.form_version) == ("submitted", "repair", 2)
    assert [(a.file_id, a.ticket_id) for a in attachments] == [("PHOTO-1", ticket.id)]
    assert ticket.number in m.last()["text"]

    (staff,) = m.messenger.texts(STAFF_CHAT)
    assert ticket.number in staff and "Lucky Noodles" in staff and "AB123456" in staff
    assert "138****5678" in staff and "13812345678" not in staff
    assert "紧急" in staff  # the staff group reads the default language, zh_CN


async def test_fixed_by_the_tips_closes_the_ticket_as_resolved_remotely(core: Core) -> None:
    await registered(core)
    m = Merchant(core)
    await report_until_summary(m, fixed=True)
    await m.press("✅ Submit")
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        events = [e.action for e in (await session.execute(select(TicketEvent).order_by(TicketEvent.id))).scalars()]
    assert (ticket.status, ticket.resolution_method) == ("resolved", "remote")
    assert ticket.resolved_at is not None
    assert events == ["created", "resolved"]
    assert "fixed remotely" in m.last()["text"]


async def test_unknown_user_can_report_and_the_ticket_is_flagged_unverified(core: Core) -> None:
    m = Merchant(core, user_id=6001)
    await m.command("/repair")
    await m.text("zz-998877")
    await m.press("Power / battery")
    await m.press("Yes")
    await m.text("battery drains in an hour")
    await m.press("Skip")
    await m.press("No")
    await m.text("2026-12-01 14:30")
    await m.text("139 0000 1111")
    await m.press("✅ Submit")
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
    assert ticket.unverified and ticket.serial == "ZZ-998877" and ticket.merchant_id is None
    staff = m.messenger.texts(STAFF_CHAT)[-1]
    assert "未核实" in staff and "139****1111" in staff


async def test_the_same_update_delivered_twice_is_handled_once(core: Core) -> None:
    m = Merchant(core)
    await m.command("/repair")
    first = await m.send("text", update_id=42, text="AB123456")
    again = await m.send("text", update_id=42, text="AB123456")
    assert not first.duplicate and again.duplicate and again.outbox_ids == []
    assert await count(core, Answer) == 1
    assert await count(core, ProcessedUpdate, ProcessedUpdate.update_id == 42) == 1
    assert await count(core, OutboxMessage, OutboxMessage.chat_id == USER) == 2


async def test_bad_input_gets_one_line_and_changes_nothing(core: Core) -> None:
    m = Merchant(core)
    await m.command("/repair")
    await m.text("AB123456")
    async with core.sessions() as session:
        before = (await session.get(Conversation, USER)).state  # type: ignore[union-attr]
    await m.text("I typed instead of pressing")
    assert m.last()["text"] == "Please tap one of the buttons above."
    await m.send("other", other_kind="sticker")
    await m.send("button", data="d:1:printing")  # a button from an old message
    async with core.sessions() as session:
        after = (await session.get(Conversation, USER)).state  # type: ignore[union-attr]
    assert after == before
    assert await count(core, Answer) == 1


async def test_an_old_button_says_the_question_is_closed(core: Core) -> None:
    m = Merchant(core)
    await m.command("/repair")
    await m.text("AB123456")
    stale = m.button("Printing")
    await m.send("button", data=stale)
    outcome = await m.send("button", data=stale)
    assert outcome.callback_text == "This question is closed."
    assert await count(core, Answer) == 2


async def test_two_instances_pressing_one_button_at_once_store_one_answer(core: Core, database_url: str) -> None:
    """Two bot processes share the database; a double press lands on both at once."""
    second = await build_core(make_settings(database_url), RecordingMessenger(), core.clock, migrate=False)
    try:
        m = Merchant(core)
        await m.command("/repair")
        await m.text("AB123456")
        data = m.button("Network / SIM")
        incoming = [
            Incoming(user_id=USER, chat_id=USER, kind="button", update_id=uid, data=data, language_code="en")
            for uid in (900, 901)
        ]
        outcomes = await asyncio.gather(core.service.handle(incoming[0]), second.service.handle(incoming[1]))
    finally:
        await second.close()
    assert sorted(o.callback_text is None for o in outcomes) == [False, True]
    assert await count(core, Answer, Answer.question_key == "category") == 1


async def test_a_failure_mid_update_rolls_everything_back(core: Core) -> None:
    await registered(core)
    m = Merchant(core)
    await report_until_summary(m, fixed=False)

    async def broken(*_: Any) -> None:
        raise RuntimeError("disk on fire")

    core.registry.outcomes["repair_ticket"] = broken
    with pytest.raises(RuntimeError):
        await m.send("button", update_id=77, data=m.button("✅ Submit"))
    assert await count(core, Ticket) == 0
    assert await count(core, ProcessedUpdate, ProcessedUpdate.update_id == 77) == 0
    assert await count(core, Submission, Submission.status == "in_progress") == 1


async def test_a_restarted_bot_continues_at_the_same_step(database_url: str, clock: FrozenClock) -> None:
    first = await build_core(make_settings(database_url), RecordingMessenger(), clock)
    m = Merchant(first)
    await m.command("/repair")
    await m.text("AB123456")
    await first.close()
    second = await build_core(make_settings(database_url), RecordingMessenger(), clock)
    try:
        m2 = Merchant(second)
        await m2.command("/help")
        assert m2.last()["text"].startswith("What kind of problem is it?")
        await m2.send("button", data=m.button("Card reading"))
        assert m2.last()["text"].startswith("Can you still take payments")
    finally:
        await second.close()


async def test_invite_code_and_shared_phone_identify_the_merchant(core: Core) -> None:
    async with core.sessions() as session, session.begin():
        await add_merchant(
            session,
            name="Tea House",
            phone="13900002222",
            now=core.clock.now(),
            terminals=[("TH000001", None)],
            invite_code="teacode123",
        )
        await add_merchant(session, name="Bakery", phone="13700003333", now=core.clock.now(), invite_code="bakery0001")
    tea = Merchant(core, user_id=7001)
    await tea.command("/start teacode123")
    assert "Welcome, Tea House" in tea.last()["text"] and "TH000001" in tea.last()["text"]
    other = Merchant(core, user_id=7002)
    await other.command("/start teacode123")
    assert "already been used" in other.last()["text"]
    await other.command("/start nosuchcode")
    assert "not valid" in other.last()["text"]
    await other.send("contact", contact_phone="+8613700003333", contact_is_own=False)
    assert "your own phone number" in other.last()["text"]
    await other.send("contact", contact_phone="+8613700003333", contact_is_own=True)
    assert "Bakery" in other.last()["text"]
    async with core.sessions() as session:
        linked = (await session.get(Conversation, 7002)).merchant_id  # type: ignore[union-attr]
    assert linked is not None


async def test_cancel_help_and_status_work_mid_dialogue(core: Core) -> None:
    m = Merchant(core)
    await m.command("/repair")
    await m.text("AB123456")
    await m.command("/status")
    assert m.last()["text"].startswith("What kind of problem")
    assert "no open tickets" in [p for c, p in m.messenger.sent if c == USER][-2]["text"]
    await m.command("/cancel")
    assert m.last()["text"].startswith("Cancelled")
    assert await count(core, Submission, Submission.status == "cancelled") == 1
    await m.command("/cancel")
    assert m.last()["text"] == "There is nothing to cancel."


async def test_a_report_left_unfinished_for_two_days_is_closed_and_the_merchant_told(core: Core) -> None:
    from datetime import timedelta

    from bot.services.expiry import sweep_abandoned

    m = Merchant(core)
    await m.command("/repair")
    await m.text("AB123456")
    core.clock.advance(timedelta(hours=47))  # type: ignore[attr-defined]
    assert await sweep_abandoned(core.service, core.dialogues, core.clock, core.outbox) == 0
    core.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    assert await sweep_abandoned(core.service, core.dialogues, core.clock, core.outbox) == 1
    assert "expired" in m.last()["text"]
    assert await count(core, Submission, Submission.status == "abandoned") == 1
    assert await sweep_abandoned(core.service, core.dialogues, core.clock, core.outbox) == 0
    await m.text("hello?")
    assert m.last()["text"].startswith("Send this to our service team?")  # free text is an enquiry now
    async with core.sessions() as session:
        assert (await session.get(Conversation, USER)).state is None  # type: ignore[union-attr]
