"""The staff desk's case messages and lifecycle buttons, through the registry as the handlers call them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import Core
from bot.delivery.callbacks import AssignTo, CaseButton
from bot.services.turn import StaffAction
from bot.services.updates import UpdateWork
from bot.storage.models import Attachment, Staff, StaffAudit, Submission, Terminal, Ticket, TicketEvent
from tests.conftest import STAFF_CHAT, RecordingMessenger, add_staff, linked_merchant

SHOP = 515151
ENGINEER = 700001
SUPERVISOR = 700002
STRANGER = 700099

_update_ids = iter(range(10_000, 20_000))


async def open_repair(core: Core, *, severity: str = "urgent", merchant: bool = True) -> int:
    if merchant:
        await linked_merchant(core, SHOP, name="Lucky Noodles", phone="13812345678", terminals=[("AB123456", "P300")])
    async with core.sessions() as session:
        terminal = (await session.execute(select(Terminal).where(Terminal.serial == "AB123456"))).scalar_one()
        merchant_id = terminal.merchant_id

    async def work(done: UpdateWork) -> None:
        ticket = Ticket(
            kind="repair",
            status="new",
            merchant_id=merchant_id,
            telegram_user_id=SHOP,
            terminal_id=terminal.id,
            serial="AB123456",
            severity=severity,
            description="screen black, call me on 13912345678",
            contact_phone="+8613812345678",
            created_at=done.now,
            reopen_count=0,
        )
        await core.cases.open(done, ticket, actor=f"merchant:{SHOP}")

    await core.cases.updates.run(next(_update_ids), work)
    await core.outbox.deliver()
    async with core.sessions() as session:
        return int((await session.execute(select(Ticket.id))).scalar_one())


async def press(core: Core, user: int, data: object, chat: int = STAFF_CHAT, message_id: int | None = 1) -> str | None:
    action = StaffAction(next(_update_ids), chat, user, f"user {user}", message_id, "en")
    outcome = await core.registry.staff_buttons[type(data)](action, data)
    await core.outbox.deliver()
    return outcome.callback_text


async def ticket(core: Core, ticket_id: int) -> Ticket:
    async with core.sessions() as session:
        found = await session.get(Ticket, ticket_id)
        assert found is not None
        return found


def messenger(core: Core) -> RecordingMessenger:
    sent = core.outbox.messenger
    assert isinstance(sent, RecordingMessenger)
    return sent


async def test_a_new_case_shows_in_the_group_with_its_deadline_and_masked_numbers(core: Core) -> None:
    await open_repair(core)
    (case,) = messenger(core).texts(STAFF_CHAT)
    assert "AB123456" in case and "138****5678" in case and "139****5678" in case
    assert "13812345678" not in case and "13912345678" not in case
    assert "⚠️" in case  # urgent: cannot take payments
    buttons = [b["text"] for row in messenger(core).sent[-1][1]["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["🙋 接单", "👥 指派给…", "📞 联系商户"]


async def test_take_then_resolve_remotely_tells_the_merchant_and_sets_the_warranty(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)
    await press(core, ENGINEER, CaseButton(ticket_id, "take"))
    taken = await ticket(core, ticket_id)
    assert taken.status == "taken" and taken.first_response_at is not None
    assert "Wang Gong" in messenger(core).texts(SHOP)[-1]
    edit = messenger(core).sent[-2] if messenger(core).sent[-1][0] == SHOP else messenger(core).sent[-1]
    assert edit[0] == STAFF_CHAT and edit[1]["edit_message_id"] == 1 and "Wang Gong" in edit[1]["text"]

    await press(core, ENGINEER, CaseButton(ticket_id, "resolve_remote"))
    resolved = await ticket(core, ticket_id)
    assert (resolved.status, resolved.resolution_method) == ("resolved", "remote")
    assert "resolved" in messenger(core).texts(SHOP)[-1]
    async with core.sessions() as session:
        terminal = await session.get(Terminal, resolved.terminal_id)
        assert terminal is not None and terminal.warranty_until is not None
        events = [e.action for e in (await session.execute(select(TicketEvent).order_by(TicketEvent.id))).scalars()]
        actors = {e.actor for e in (await session.execute(select(TicketEvent))).scalars() if e.action != "created"}
    assert events == ["created", "take", "resolved"]
    assert actors == {f"staff:{ENGINEER}"}


async def test_a_stranger_and_a_non_supervisor_are_refused_and_nothing_changes(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)
    assert await press(core, STRANGER, CaseButton(ticket_id, "take")) == "Only staff can do this."
    assert (
        await press(core, ENGINEER, CaseButton(ticket_id, "assign")) == "仅限主管操作。"
    )  # staff read the group's language
    async with core.sessions() as session:
        engineer = (await session.execute(select(Staff).where(Staff.telegram_user_id == ENGINEER))).scalar_one()
    assert await press(core, STRANGER, AssignTo(ticket_id, engineer.id)) == "Only staff can do this."
    unchanged = await ticket(core, ticket_id)
    assert (unchanged.status, unchanged.assignee_id) == ("new", None)
    async with core.sessions() as session:
        refused = (
            await session.execute(select(StaffAudit.telegram_user_id).where(StaffAudit.action == "refused"))
        ).all()
    assert sorted(r[0] for r in refused) == [ENGINEER, STRANGER, STRANGER]


async def test_call_merchant_sends_the_full_number_to_the_presser_alone(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)
    await press(core, ENGINEER, CaseButton(ticket_id, "call"))
    assert any("+8613812345678" in text for text in messenger(core).texts(ENGINEER))
    assert not any("13812345678" in text for text in messenger(core).texts(STAFF_CHAT))
    async with core.sessions() as session:
        seen = (await session.execute(select(StaffAudit).where(StaffAudit.action == "phone_revealed"))).scalar_one()
    assert (seen.telegram_user_id, seen.subject) == (ENGINEER, f"ticket:{ticket_id}")


async def test_show_photos_sends_the_merchants_evidence_as_albums_of_one_kind(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)
    async with core.sessions() as session, session.begin():
        submission = Submission(
            form_key="repair",
            form_version=2,
            telegram_user_id=SHOP,
            status="submitted",
            locale="en",
            started_at=core.clock.now(),
        )
        session.add(submission)
        await session.flush()
        for i in range(12):
            session.add(
                Attachment(
                    submission_id=submission.id,
                    ticket_id=ticket_id,
                    question_key="photos",
                    kind="photo",
                    file_id=f"PHOTO{i}",
                )
            )
        session.add(
            Attachment(
                submission_id=submission.id,
                ticket_id=ticket_id,
                question_key="photos",
                kind="document",
                file_id="RECEIPT",
            )
        )
    assert await press(core, ENGINEER, CaseButton(ticket_id, "photos")) == "已在下方发送 13 个文件。"
    albums = [p["media"] for chat, p in messenger(core).sent if chat == STAFF_CHAT and "media" in p]
    assert [[m["media"] for m in album] for album in albums] == [
        [f"PHOTO{i}" for i in range(10)],
        ["PHOTO10", "PHOTO11"],
        ["RECEIPT"],
    ]
    assert {m["type"] for m in albums[2]} == {"document"}


async def test_a_report_about_a_terminal_under_warranty_says_so_and_goes_to_after_sales(core: Core) -> None:
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone="13812345678", terminals=[("AB123456", "P300")])
    async with core.sessions() as session, session.begin():
        terminal = (await session.execute(select(Terminal).where(Terminal.serial == "AB123456"))).scalar_one()
        terminal.warranty_until = core.clock.now() + timedelta(days=30)
    await open_repair(core, severity="normal", merchant=False)
    (case,) = messenger(core).texts(STAFF_CHAT)
    assert "保修期至 2026-12-24" in case and "负责：售后" in case
