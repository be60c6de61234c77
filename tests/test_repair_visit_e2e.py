"""A repair from report to on-site fix, end to end: the real bot, the fake Bot API server, a frozen clock.

The merchant speaks English; the staff group reads the default language, zh_CN.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.clock import FrozenClock
from bot.delivery.callbacks import VisitAnswer, unpack
from bot.storage.models import FollowUp, Terminal, Ticket, TicketEvent
from tests.conftest import SHANGHAI, STAFF_CHAT, add_staff, linked_merchant
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings

ENGINEER = 900011
SHOP = 626262
OTHER_SHOP = 636363
PHONE = "13812345678"


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_user(OTHER_SHOP, first_name="Li", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[ENGINEER])
        yield server


@pytest.fixture
def monday_morning() -> FrozenClock:
    return FrozenClock(shanghai(2026, 11, 23, 10, 0))


class StaffMember:
    """The engineer in the staff group: presses buttons on the bot's messages and replies to them."""

    def __init__(self, api: FakeBotAPI, user_id: int) -> None:
        self.api = api
        self.user_id = user_id

    def group(self) -> list[Any]:
        return self.api.sent(STAFF_CHAT)

    def find(self, label: str) -> tuple[Any, str]:
        for message in reversed(self.group()):
            for text, data in self.api.buttons(message):
                if text == label:
                    return message, data
        raise AssertionError(f"no button {label!r} in the staff group; last: {self.group()[-1].text!r}")

    async def press(self, label: str, *, then: Any) -> None:
        """Press `label` on the newest message that has it, and wait until `then()` holds."""
        message, data = self.find(label)
        answers = len(self.api.callback_answers)
        self.api.member_presses(STAFF_CHAT, self.user_id, message, data)
        await self.api.wait_for(lambda: len(self.api.callback_answers) > answers and then(), timeout=STEP_TIMEOUT)

    async def reply(self, message: Any, text: str, *, then: Any) -> None:
        self.api.member_sends_text(STAFF_CHAT, self.user_id, text, reply_to=message)
        await self.api.wait_for(then, timeout=STEP_TIMEOUT)


async def shops(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE, terminals=[("AB123456", "P300")])
    await linked_merchant(core, OTHER_SHOP, name="Other Tea", phone="13911112222")


async def report_repair(api: FakeBotAPI, chat: Chat) -> None:
    """The merchant's /repair dialogue, as they would tap and type it."""
    await chat.type("/repair")
    await chat.press("Terminal AB123456")
    await chat.press("Network / SIM")
    await chat.press("No")  # it cannot take payments: urgent
    await chat.type(f"no signal since this morning, call me on {PHONE}")
    await chat.press("Skip")
    assert "Please try these first:" in chat.last_text
    await chat.press("No")
    await chat.press("Tomorrow afternoon")
    await chat.press("Use 138****5678")  # the number on file, masked even to its owner
    assert "Please check your answers:" in chat.last_text
    await chat.press("✅ Submit")
    assert "Your ticket is R-" in chat.last_text
    await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)


async def the_ticket(core: Core) -> Ticket:
    async with core.sessions() as session:
        return (await session.execute(select(Ticket))).scalar_one()


async def test_a_repair_goes_from_report_through_an_agreed_visit_to_an_onsite_fix_with_warranty_and_follow_up(
    api: FakeBotAPI, sqlite_url: str, monday_morning: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_morning) as running:
        core = running.core
        await shops(core)
        merchant, other = Chat(api, SHOP), Chat(api, OTHER_SHOP)
        engineer = StaffMember(api, ENGINEER)
        await report_repair(api, merchant)
        case = engineer.group()[0]
        assert [t for t, _ in api.buttons(case)] == ["🙋 接单", "👥 指派给…", "📞 联系商户"]

        # Take: the merchant hears who handles it.
        told = len(merchant.seen())
        await engineer.press("🙋 接单", then=lambda: len(merchant.seen()) > told)
        assert "Wang Gong" in merchant.last_text

        # Schedule visit: the times on offer, the merchant's preferred time first.
        posted = len(engineer.group())
        await engineer.press("📅 预约上门", then=lambda: len(engineer.group()) > posted)
        slots = engineer.group()[-1]
        labels = [t for t, _ in api.buttons(slots)]
        assert labels[0] == "⭐ 周二 11-24 15:00（商户期望）"
        assert labels[1:] == [
            "周一 11-23 14:00",
            "周二 11-24 10:00",
            "周二 11-24 14:00",
            "周三 11-25 10:00",
            "周三 11-25 14:00",
        ]
        told = len(merchant.seen())
        await engineer.press(labels[0], then=lambda: len(merchant.seen()) > told and slots.edits == 1)
        assert "15:00" in str(slots.text) and api.buttons(slots) == []
        offer = merchant.seen()[-1]
        assert "Tue 2026-11-24 15:00" in str(offer.text) and "Wang Gong" in str(offer.text)
        assert [t for t, _ in api.buttons(offer)] == ["✅ Confirm", "🔁 Ask for another time"]

        # Someone else's press on this ticket's offer is refused and changes nothing.
        await other.type("/help")
        forged = dict((t, d) for t, d in api.buttons(offer))["✅ Confirm"]
        assert isinstance(unpack(forged), VisitAnswer)
        answers = len(api.callback_answers)
        api.user_presses(OTHER_SHOP, other.seen()[-1], forged, forged=True)
        await api.wait_for(lambda: len(api.callback_answers) > answers, timeout=STEP_TIMEOUT)
        assert api.callback_answers[-1].get("text") == "This question is closed."
        assert (await the_ticket(core)).visit_state == "proposed"

        # The merchant asks for another time: the case comes back to the bottom of the group, named.
        posted = len(engineer.group())
        await merchant.press("🔁 Ask for another time", count=0)
        await api.wait_for(lambda: offer.edits == 1 and len(engineer.group()) > posted, timeout=STEP_TIMEOUT)
        assert "another time" in str(offer.text) and api.buttons(offer) == []
        again = engineer.group()[-1]
        assert "Wang Gong" in str(again.text) and "希望换一个时间" in str(again.text)
        assert str((await the_ticket(core)).number) in str(again.text)

        # Staff schedule again; the merchant confirms.
        posted = len(engineer.group())
        await engineer.press("📅 预约上门", then=lambda: len(engineer.group()) > posted)
        told = len(merchant.seen())
        await engineer.press("周三 11-25 10:00", then=lambda: len(merchant.seen()) > told)
        second = merchant.seen()[-1]
        assert "Wed 2026-11-25 10:00" in str(second.text)
        posted = len(engineer.group())
        await merchant.press("✅ Confirm", count=0)
        await api.wait_for(lambda: len(engineer.group()) > posted and second.edits == 1, timeout=STEP_TIMEOUT)
        assert "商户已确认" in str(engineer.group()[-1].text)
        assert "is confirmed" in str(second.text) and api.buttons(second) == []
        visit = await the_ticket(core)
        assert (visit.visit_at, visit.visit_state) == (shanghai(2026, 11, 25, 10, 0), "confirmed")

        # The visit day: resolved on site, with the work done, the parts and a note.
        monday_morning.set(shanghai(2026, 11, 25, 11, 30))
        posted = len(engineer.group())
        await engineer.press("✅ 上门已解决", then=lambda: len(engineer.group()) > posted)
        question = engineer.group()[-1]
        assert "逐行" in str(question.text)
        told = len(merchant.seen())
        await engineer.reply(
            question,
            "Replaced the SIM tray, signal back\nSIM tray\nTested two payments with the owner",
            then=lambda: len(merchant.seen()) > told,
        )
        assert "resolved" in merchant.last_text and "technician" in merchant.last_text

    ticket = await the_ticket(core)
    assert (ticket.status, ticket.resolution_method) == ("resolved", "onsite")
    assert (ticket.work_done, ticket.parts_replaced) == ("Replaced the SIM tray, signal back", "SIM tray")
    async with core.sessions() as session:
        terminal = await session.get(Terminal, ticket.terminal_id)
        planned = list((await session.execute(select(FollowUp).where(FollowUp.ticket_id == ticket.id))).scalars())
        trail = list(
            (
                await session.execute(
                    select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
                )
            ).scalars()
        )
    assert terminal is not None and terminal.warranty_until is not None
    assert terminal.warranty_until >= shanghai(2026, 11, 25, 11, 30) + timedelta(days=90)
    assert [(f.kind, f.status) for f in planned] == [("repair", "scheduled")]

    staff, shop = f"staff:{ENGINEER}", f"merchant:{SHOP}"
    assert [(e.action, e.actor) for e in trail] == [
        ("created", shop),
        ("take", staff),
        ("schedule_visit", staff),
        ("visit_declined", shop),
        ("schedule_visit", staff),
        ("visit_confirmed", shop),
        ("resolved", staff),
    ]
    assert datetime.fromisoformat(trail[2].detail["visit_at"]) == shanghai(2026, 11, 24, 15, 0)
    assert trail[-1].detail["work_done"] == "Replaced the SIM tray, signal back"

    # Nothing the group was ever shown (sent or edited in) holds the merchant's number in full.
    group_texts = [
        str(call.params.get("text"))
        for call in api.calls()
        if call.method in ("sendMessage", "editMessageText") and str(call.params.get("chat_id")) == str(STAFF_CHAT)
    ]
    assert group_texts and not any(PHONE in text for text in group_texts)
    assert any("138****5678" in text for text in group_texts)
