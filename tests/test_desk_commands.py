"""Staff commands typed in the group (/ticket, /open, /mine, /find, /newticket) and the merchant's /status,
through the registry as the handlers call them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.app import Core
from bot.delivery.callbacks import CaseButton
from bot.services.turn import Incoming, StaffAction
from bot.services.updates import UpdateWork
from bot.storage.models import StaffAudit, Terminal, Ticket, TicketEvent
from tests.conftest import SHANGHAI, STAFF_CHAT, RecordingMessenger, add_staff, linked_merchant

SHOP = 515151
BAKERY = 515152
ENGINEER = 700001
COLLEAGUE = 700003
STRANGER = 700099

_update_ids = iter(range(30_000, 40_000))


def messenger(core: Core) -> RecordingMessenger:
    sent = core.outbox.messenger
    assert isinstance(sent, RecordingMessenger)
    return sent


async def command(core: Core, user: int, name: str, args: str = "", *, private: bool = False) -> str:
    """What the bot answered in the chat the command was typed in (the group, or a private chat)."""
    chat = user if private else STAFF_CHAT
    before = len(messenger(core).sent)
    action = StaffAction(next(_update_ids), chat, user, f"user {user}", 1, "en", private=private)
    await core.registry.staff_commands[name](action, args)
    await core.outbox.deliver()
    answers = [p["text"] for c, p in messenger(core).sent[before:] if c == chat]
    return answers[-1] if answers else ""


async def press(core: Core, user: int, data: CaseButton) -> None:
    action = StaffAction(next(_update_ids), STAFF_CHAT, user, f"user {user}", 1, "en")
    await core.registry.staff_buttons[type(data)](action, data)
    await core.outbox.deliver()


async def merchant_says(core: Core, user: int, name: str) -> str:
    incoming = Incoming(user, user, "command", next(_update_ids), "en", command=name)
    outcome = await core.service.handle(incoming)
    await core.outbox.deliver(outcome.outbox_ids)
    return next(str(p["text"]) for c, p in reversed(messenger(core).sent) if c == user and "R-" in p["text"])


async def shops(core: Core) -> None:
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone="13812345678", terminals=[("AB123456", "P300")])
    await linked_merchant(
        core, BAKERY, name="Golden Bakery", phone="13912340000", terminals=[("CD100001", "A8"), ("CD100002", "A8")]
    )


async def open_case(core: Core, serial: str, *, severity: str = "normal") -> int:
    """A repair reported from the terminal `serial`'s merchant, opened on the desk; its ticket id."""
    async with core.sessions() as session:
        terminal = (await session.execute(select(Terminal).where(Terminal.serial == serial))).scalar_one()

    created: list[int] = []

    async def work(done: UpdateWork) -> None:
        ticket = Ticket(
            kind="repair",
            status="new",
            merchant_id=terminal.merchant_id,
            terminal_id=terminal.id,
            serial=serial,
            severity=severity,
            description="screen black, call me on 13912345678",
            contact_phone="+8613812345678",
            created_at=done.now,
            reopen_count=0,
        )
        await core.cases.open(done, ticket, actor="merchant:1")
        created.append(ticket.id)

    await core.cases.updates.run(next(_update_ids), work)
    await core.outbox.deliver()
    return created[0]


async def change(core: Core, ticket_id: int, **columns: Any) -> Ticket:
    async with core.sessions() as session, session.begin():
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        for name, value in columns.items():
            setattr(ticket, name, value)
    return ticket


async def count(core: Core, model: Any, *where: Any) -> int:
    async with core.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


# ---- the gate ----------------------------------------------------------------------------------------------


async def test_a_group_member_who_is_not_staff_is_refused_every_command_and_nothing_changes(core: Core) -> None:
    await shops(core)
    ticket_id = await open_case(core, "AB123456")
    tickets_before = await count(core, Ticket)
    for name, args in (
        ("ticket", str(ticket_id)),
        ("open", ""),
        ("mine", ""),
        ("find", "13812345678"),
        ("newticket", "13812345678 !screen black"),
    ):
        assert await command(core, STRANGER, name, args) == "Only staff can do this.", name
    assert await count(core, Ticket) == tickets_before
    assert await count(core, StaffAudit, StaffAudit.action == "refused", StaffAudit.telegram_user_id == STRANGER) == 5
    assert await count(core, StaffAudit, StaffAudit.action == "phone_revealed") == 0


# ---- /open and /mine ---------------------------------------------------------------------------------------


async def test_open_lists_open_cases_by_their_most_urgent_unmet_deadline(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await shops(core)
    later = await open_case(core, "AB123456")
    answered = await open_case(core, "CD100001")
    no_deadline = await open_case(core, "CD100002", severity="partial")
    urgent = await open_case(core, "AB123456", severity="urgent")
    done = await open_case(core, "CD100001")
    await change(core, later, respond_due_at=at(27, 9), sla_due_at=at(27, 18))
    # Its response deadline is the earliest of all, but it was met: the resolution deadline counts.
    await change(
        core,
        answered,
        respond_due_at=at(24, 9),
        first_response_at=at(24, 9),
        sla_due_at=at(26, 18),
    )
    await change(core, no_deadline, respond_due_at=None, sla_due_at=None)
    await change(core, urgent, respond_due_at=at(24, 9, 30), sla_due_at=at(24, 18))  # overdue already
    await change(core, done, status="resolved", resolved_at=at(24, 9))

    listed = (await command(core, ENGINEER, "open")).splitlines()
    numbers = [await number_of(core, t) for t in (urgent, answered, later, no_deadline)]
    assert listed[0] == "未结工单（4），按紧急程度排序："
    assert [line.split(" ")[1] for line in listed[1:]] == numbers
    assert listed[1] == f"🔴 {numbers[0]} · 等待受理 · 暂无人接单 · ⏰ 2026-11-24 09:30 前响应（已超时）"
    assert listed[2].endswith("2026-11-26 18:00 前解决")
    assert listed[4].startswith("🟠") and listed[4].endswith("无时限")


async def test_open_shows_thirty_lines_and_says_how_many_more(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await shops(core)
    for _ in range(32):
        await open_case(core, "AB123456")
    listed = (await command(core, ENGINEER, "open")).splitlines()
    assert len(listed) == 1 + 30 + 1
    assert listed[-1] == "……另有 2 条"


async def test_mine_lists_only_the_cases_the_caller_has_taken(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await add_staff(core, COLLEAGUE, "aftersales", "Li Gong")
    await shops(core)
    mine = await open_case(core, "AB123456")
    theirs = await open_case(core, "CD100001")
    await open_case(core, "CD100002")
    assert await command(core, ENGINEER, "mine") == "您没有未结工单。"
    await press(core, ENGINEER, CaseButton(mine, "take"))
    await press(core, COLLEAGUE, CaseButton(theirs, "take"))
    listed = (await command(core, ENGINEER, "mine")).splitlines()
    assert listed[0] == "我的未结工单（1），按紧急程度排序："
    assert listed[1].split(" ")[1] == await number_of(core, mine)
    assert "Wang Gong" in listed[1] and "已受理" in listed[1]


async def number_of(core: Core, ticket_id: int) -> str:
    async with core.sessions() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.number is not None
        return ticket.number


# ---- /ticket -------------------------------------------------------------------------------------------------


async def test_ticket_shows_the_case_and_its_timeline_with_numbers_masked(core: Core, clock: Any) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await shops(core)
    ticket_id = await open_case(core, "AB123456", severity="urgent")
    clock.advance(timedelta(minutes=10))
    await press(core, ENGINEER, CaseButton(ticket_id, "take"))
    number = await number_of(core, ticket_id)

    shown = await command(core, ENGINEER, "ticket", number.lower())
    assert shown.splitlines()[0] == f"🔧 报修 {number}"
    assert "AB123456" in shown and "138****5678" in shown and "139****5678" in shown
    assert "13812345678" not in shown and "13912345678" not in shown
    history = shown.split("处理记录：\n", 1)[1].splitlines()
    assert history == ["• 2026-11-24 10:00 · 商户 · 创建", "• 2026-11-24 10:10 · Wang Gong · 接单"]

    assert await command(core, ENGINEER, "ticket", str(ticket_id)) == shown  # a bare id works too
    assert await command(core, ENGINEER, "ticket", "R-2026-999999") == "没有工单 R-2026-999999。/open 可查看未结工单。"
    assert (await command(core, ENGINEER, "ticket", "")).startswith("用法：/ticket")
    assert (await command(core, ENGINEER, "ticket", "lucky")).startswith("用法：/ticket")


# ---- /find ---------------------------------------------------------------------------------------------------


async def test_find_by_phone_serial_or_name_masks_phones_in_the_group(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await shops(core)
    case_id = await open_case(core, "AB123456")
    number = await number_of(core, case_id)

    by_phone = await command(core, ENGINEER, "find", "138 1234 5678")
    assert "Lucky Noodles · 138****5678 · 终端：AB123456" in by_phone and number in by_phone
    assert "Golden Bakery" not in by_phone and "13812345678" not in by_phone

    by_serial = await command(core, ENGINEER, "find", "cd1000")
    assert "Golden Bakery · 139****0000 · 终端：CD100001, CD100002" in by_serial
    assert "无未结工单" in by_serial and "Lucky" not in by_serial

    by_name = await command(core, ENGINEER, "find", "BAKERY")
    assert "Golden Bakery" in by_name and "Lucky" not in by_name
    assert await command(core, ENGINEER, "find", "100%") == "没有找到“100%”。"
    assert (await command(core, ENGINEER, "find", "")).startswith("用法：/find")
    assert await count(core, StaffAudit, StaffAudit.action == "phone_revealed") == 0


async def test_find_in_a_private_chat_shows_the_full_number_and_records_who_saw_it(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await shops(core)
    found = await command(core, ENGINEER, "find", "noodles", private=True)
    assert "+8613812345678" in found
    async with core.sessions() as session:
        seen = (await session.execute(select(StaffAudit).where(StaffAudit.action == "phone_revealed"))).scalar_one()
    assert (seen.telegram_user_id, seen.subject, seen.detail["via"]) == (ENGINEER, "merchant:1", "find")
    assert not any("13812345678" in text for text in messenger(core).texts(STAFF_CHAT))


# ---- /newticket ----------------------------------------------------------------------------------------------


async def test_newticket_for_a_merchant_who_phoned_opens_a_case_in_the_group(core: Core) -> None:
    await add_staff(core, ENGINEER, "service", "Zhao")
    await shops(core)
    answer = await command(core, ENGINEER, "newticket", "13812345678 !screen stays black")
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        event = (await session.execute(select(TicketEvent))).scalar_one()
    assert ticket.number is not None and answer == f"✅ 已为 Lucky Noodles 创建工单 {ticket.number}。"
    assert (ticket.status, ticket.severity, ticket.serial, ticket.role) == ("new", "urgent", "AB123456", "aftersales")
    assert ticket.description == "screen stays black" and ticket.respond_due_at is not None
    assert (event.actor, event.action, event.detail) == (f"staff:{ENGINEER}", "created", {"channel": "phone"})
    case = [p for c, p in messenger(core).sent if c == STAFF_CHAT and ticket.number in p["text"]][0]
    assert "AB123456" in case["text"] and "138****5678" in case["text"] and case["reply_markup"]
    assert ticket.number in messenger(core).texts(SHOP)[-1]  # the merchant hears of it in Telegram

    # The same lifecycle as a report made in the chat.
    await press(core, ENGINEER, CaseButton(ticket.id, "take"))
    assert "Zhao" in messenger(core).texts(SHOP)[-1]


async def test_newticket_by_serial_and_with_several_terminals(core: Core) -> None:
    await add_staff(core, ENGINEER, "service", "Zhao")
    await shops(core)
    await command(core, ENGINEER, "newticket", "cd100002 ~ card reader fails on chip cards")
    await command(core, ENGINEER, "newticket", "13912340000 paper jams")
    async with core.sessions() as session:
        by_serial, by_phone = (await session.execute(select(Ticket).order_by(Ticket.id))).scalars()
    assert (by_serial.serial, by_serial.severity, by_serial.description) == (
        "CD100002",
        "partial",
        "card reader fails on chip cards",
    )
    # The bakery has two terminals: which one is left to whoever takes the case.
    assert (by_phone.serial, by_phone.terminal_id, by_phone.severity) == (None, None, "normal")


async def test_newticket_with_an_unknown_merchant_or_no_description_creates_nothing(core: Core) -> None:
    await add_staff(core, ENGINEER, "service", "Zhao")
    await shops(core)
    assert (await command(core, ENGINEER, "newticket", "13700000000 broken")).startswith("没有与 137****0000 匹配")
    assert (await command(core, ENGINEER, "newticket", "ZZ999 broken")).startswith("没有与 ZZ999 匹配")
    assert (await command(core, ENGINEER, "newticket", "13812345678")).startswith("用法：/newticket")
    assert (await command(core, ENGINEER, "newticket", "13812345678 !")).startswith("用法：/newticket")
    assert await count(core, Ticket) == 0
    assert not any("13700000000" in text for text in messenger(core).texts(STAFF_CHAT))


# ---- the merchant's /status ----------------------------------------------------------------------------------


async def test_status_shows_the_real_state_and_who_handles_it(core: Core, clock: Any) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await shops(core)
    old = await open_case(core, "AB123456")
    await change(core, old, status="closed", resolved_at=at(10, 10), closed_at=at(16, 10))  # 8 days ago
    recent = await open_case(core, "AB123456")
    await change(core, recent, status="resolved", resolved_at=at(20, 10))
    current = await open_case(core, "AB123456")
    await change(core, current, telegram_user_id=None)  # opened by staff: found through the merchant
    numbers = {name: await number_of(core, i) for name, i in (("old", old), ("recent", recent), ("now", current))}

    status = await merchant_says(core, SHOP, "status")
    assert numbers["old"] not in status
    assert f"{numbers['recent']} – resolved" in status
    assert f"{numbers['now']} – waiting to be taken" in status
    assert "waiting to be taken" in status

    await press(core, ENGINEER, CaseButton(current, "take"))
    await change(core, current, visit_at=at(25, 14), visit_state="confirmed")
    status = await merchant_says(core, SHOP, "status")
    lines = status.splitlines()
    at_case = next(i for i, line in enumerate(lines) if numbers["now"] in line)
    assert "being handled" in lines[at_case]
    assert lines[at_case + 1].strip() == "handled by Wang Gong"
    assert lines[at_case + 2].strip() == "visit: 2026-11-25 14:00"
