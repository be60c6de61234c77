"""A repair report left half-way reaches staff with what was answered, so they can call; one the merchant
cancelled does not. End to end: the real bot, the fake Bot API server, a frozen clock moved by hand.

The merchant speaks English; the staff group reads the default language, zh_CN.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, dispatch_due
from bot.clock import FrozenClock
from bot.services.expiry import sweep_abandoned
from bot.storage.models import StaffAudit, Submission, Ticket
from tests.conftest import SHANGHAI, STAFF_CHAT, add_staff, linked_merchant
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings

ENGINEER = 900031
SHOP = 656565
PHONE = "13812345678"


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_user(ENGINEER, first_name="Wang")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[ENGINEER])
        yield server


@pytest.fixture
def monday_afternoon() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 16, 0, tzinfo=SHANGHAI))


async def shop(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE, terminals=[("AB123456", "P300")])


async def half_a_report(chat: Chat) -> None:
    """Terminal, fault, cannot take payments, a description: then the merchant stops answering."""
    await chat.type("/repair")
    await chat.press("Terminal AB123456")
    await chat.press("Network / SIM")
    await chat.press("No")
    await chat.type(f"no signal since this morning, my other phone is {PHONE}")
    assert "photo" in chat.last_text.lower()


async def tickets(core: Core) -> list[Ticket]:
    async with core.sessions() as session:
        return list((await session.execute(select(Ticket).order_by(Ticket.id))).scalars())


async def test_an_expired_repair_report_reaches_staff_with_its_answers_and_a_way_to_call(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    settings = telegram_settings(sqlite_url, api)
    async with running_bot(api, settings, monday_afternoon) as running:
        core = running.core
        await shop(core)
        merchant = Chat(api, SHOP)
        await half_a_report(merchant)

        monday_afternoon.advance(settings.abandon_after - timedelta(minutes=1))
        assert await sweep_abandoned(core.service, core.dialogues, core.clock, core.outbox) == 0
        assert api.sent(STAFF_CHAT) == []
        monday_afternoon.advance(timedelta(minutes=2))
        assert await sweep_abandoned(core.service, core.dialogues, core.clock, core.outbox) == 1
        assert "expired" in merchant.last_text

        case = api.sent(STAFF_CHAT)[-1]
        text = str(case.text)
        assert text.startswith("💬 咨询 Q-2026-") and "售后" in text and "Lucky Noodles" in text
        assert "报修未填完" in text and "请致电商户" in text
        for line in ("• 终端：AB123456", "• 故障类型：网络 / SIM 卡", "• 能否收款：否"):
            assert line in text
        assert f"no signal since this morning, my other phone is {PHONE[:3]}****{PHONE[-4:]}" in text
        buttons = [t for t, _ in api.buttons(case)]
        assert "📞 联系商户" in buttons

        # Call merchant: the full number, privately, to the one who pressed.
        data = dict(api.buttons(case))["📞 联系商户"]
        api.member_presses(STAFF_CHAT, ENGINEER, case, data)
        await api.wait_for(lambda: len(api.sent(ENGINEER)) == 1, timeout=STEP_TIMEOUT)
        assert PHONE in str(api.sent(ENGINEER)[0].text)

        # The sweep said it once.
        assert await sweep_abandoned(core.service, core.dialogues, core.clock, core.outbox) == 0

    (ticket,) = await tickets(core)
    assert (ticket.kind, ticket.role, ticket.severity, ticket.serial) == ("enquiry", "aftersales", "urgent", "AB123456")
    async with core.sessions() as session:
        submission = await session.get(Submission, ticket.submission_id)
        revealed = (await session.execute(select(StaffAudit.action))).scalars().all()
    assert submission is not None and (submission.form_key, submission.status) == ("repair", "abandoned")
    assert list(revealed) == ["phone_revealed"]


async def test_a_repair_report_replaced_by_a_survey_reaches_staff_at_once(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await shop(core)
        api.member_sends_text(STAFF_CHAT, ENGINEER, "/install AB123456 13812345678 P300 2026-11-23 15:00")
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)
        monday_afternoon.set(datetime(2026, 11, 24, 9, 5, tzinfo=SHANGHAI))
        merchant = Chat(api, SHOP)
        await half_a_report(merchant)
        await dispatch_due(core)  # the installation survey arrives mid-report
        posted = len(api.sent(STAFF_CHAT))
        await merchant.press("▶️ Start")
        await api.wait_for_messages(STAFF_CHAT, posted + 1, timeout=STEP_TIMEOUT)
        text = str(api.sent(STAFF_CHAT)[-1].text)
        assert "报修未填完（商户转去填写其他表单）" in text and "• 终端：AB123456" in text
    (ticket,) = await tickets(core)
    assert ticket.kind == "enquiry"


async def test_a_cancelled_or_restarted_report_is_the_merchants_choice_and_not_sent_to_staff(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    settings = telegram_settings(sqlite_url, api)
    async with running_bot(api, settings, monday_afternoon) as running:
        core = running.core
        await shop(core)
        merchant = Chat(api, SHOP)
        await half_a_report(merchant)
        await merchant.type("/repair")
        await merchant.press("Start over")
        await merchant.press("Terminal AB123456")
        await merchant.type("/cancel")
        assert merchant.last_text.startswith("Cancelled")
        monday_afternoon.advance(settings.abandon_after + timedelta(hours=1))
        assert await sweep_abandoned(core.service, core.dialogues, core.clock, core.outbox) == 0
    assert api.sent(STAFF_CHAT) == []
    assert await tickets(core) == []
    async with core.sessions() as session:
        statuses = (await session.execute(select(Submission.status).order_by(Submission.id))).scalars().all()
    assert list(statuses) == ["cancelled", "cancelled"]
