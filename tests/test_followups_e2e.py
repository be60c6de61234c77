"""Follow-ups end to end: the real bot, the fake Bot API server, and a clock the test moves.

Merchants here speak English; the staff group reads the default language, zh_CN.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, dispatch_due
from bot.clock import FrozenClock
from bot.storage.models import FollowUp, Merchant, StaffAudit, Ticket
from tests.conftest import SHANGHAI, STAFF_CHAT, add_staff, linked_merchant
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings

STAFF_MEMBER = 900001
GROUP_MEMBER = 900002  # in the staff group, but nobody made them staff
SHOP = 616161


def shanghai(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[STAFF_MEMBER, GROUP_MEMBER])
        yield server


@pytest.fixture
def monday_afternoon() -> FrozenClock:
    return FrozenClock(shanghai(2026, 11, 23, 16, 0))


async def shop(core: Core, user_id: int = SHOP, phone: str = "13812345678") -> int:
    """Golden Dumplings, and the sales colleague in the staff group who installs for them."""
    await add_staff(core, STAFF_MEMBER, "sales")
    return await linked_merchant(core, user_id, name="Golden Dumplings", phone=phone)


async def installed_shop(api: FakeBotAPI, core: Core) -> int:
    """Golden Dumplings, whose terminal AB123456 staff registered on Monday at 15:00."""
    merchant_id = await shop(core)
    await staff_installs(api, "/install AB123456 13812345678 P300 2026-11-23 15:00")
    return merchant_id


async def followups(core: Core) -> list[FollowUp]:
    async with core.sessions() as session:
        return list((await session.execute(select(FollowUp).order_by(FollowUp.id))).scalars())


async def staff_installs(api: FakeBotAPI, text: str) -> str:
    before = len(api.sent(STAFF_CHAT))
    api.member_sends_text(STAFF_CHAT, STAFF_MEMBER, text)
    await api.wait_for_messages(STAFF_CHAT, before + 1, timeout=STEP_TIMEOUT)
    return str(api.sent(STAFF_CHAT)[-1].text)


async def test_installation_follow_up_arrives_on_the_next_working_morning_and_is_answered_on_time(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await shop(core)
        reply = await staff_installs(api, "/install AB123456 13812345678 P300 2026-11-23 15:00")
        assert "AB123456" in reply and "Golden Dumplings" in reply
        planned = await followups(core)
        assert [f.kind for f in planned] == ["install_first", "install_second"]

        await dispatch_due(core)
        assert api.sent(SHOP) == []  # nothing before Tuesday 09:00

        monday_afternoon.set(shanghai(2026, 11, 24, 9, 5))
        await dispatch_due(core)
        invitation = api.sent(SHOP)[-1]
        assert "Golden Dumplings" in str(invitation.text) and "AB123456" in str(invitation.text)
        assert [t for t, _ in api.buttons(invitation)] == ["▶️ Start", "⏰ Later", "🔕 Stop these surveys"]

        chat = Chat(api, SHOP)
        await chat.press("▶️ Start")
        assert "Is your new terminal installed and working normally?" in chat.last_text
        for label in ("Yes", "Yes", "4★", "Yes", "Yes", "Yes"):
            await chat.press(label)
        await chat.toggle("☐ More terminals")
        assert "☑ More terminals" in [t for t, _ in api.buttons(chat.seen()[-1])]
        await chat.press("Done")
        await chat.press("Skip")
        await chat.press("✅ Submit")
        assert "Thank you for your answers!" in chat.last_text

    first = (await followups(core))[0]
    assert (first.status, first.outcome) == ("completed", "on_time")
    assert first.message_id == invitation.message_id


async def test_silence_brings_one_reminder_then_a_call_task_for_staff(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await installed_shop(api, core)
        monday_afternoon.set(shanghai(2026, 11, 24, 9, 0))
        await dispatch_due(core)
        assert len(api.sent(SHOP)) == 1

        monday_afternoon.set(shanghai(2026, 11, 25, 9, 30))  # 24 hours and a half later
        await dispatch_due(core)
        await dispatch_due(core)
        assert len(api.sent(SHOP)) == 2
        assert "gentle reminder" in str(api.sent(SHOP)[-1].text)

        monday_afternoon.set(shanghai(2026, 11, 26, 20, 1))  # the window closed at 20:00 on working day 3
        await dispatch_due(core)
        task = api.sent(STAFF_CHAT)[-1]
        assert "请致电商户" in str(task.text) and "到期未回复" in str(task.text)
        assert "138****5678" in str(task.text) and "13812345678" not in str(task.text)

        before = len(api.sent(STAFF_CHAT))
        data = dict((t, d) for t, d in api.buttons(task))["📞 已联系上"]
        api.member_presses(STAFF_CHAT, STAFF_MEMBER, task, data)
        await api.wait_for(lambda: task.edits == 1, timeout=STEP_TIMEOUT)
        assert "Staff 900001" in str(task.text)  # the task now says who handled it, and has no buttons left
        assert api.buttons(task) == []
        await api.wait_for_messages(STAFF_CHAT, before + 1, timeout=STEP_TIMEOUT)

        api.member_sends_text(STAFF_CHAT, STAFF_MEMBER, "Shop owner says all fine, busy week", reply_to=task)
        await api.wait_for_messages(STAFF_CHAT, before + 2, timeout=STEP_TIMEOUT)
    first = (await followups(core))[0]
    assert (first.status, first.outcome, first.escalation_reason) == ("called", "reached", "no_answer")
    assert first.note is not None and "all fine" in first.note
    assert len(api.sent(SHOP)) == 2  # one invitation, one reminder, nothing more


async def test_a_blocked_bot_marks_the_merchant_unreachable_and_escalates(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        merchant_id = await installed_shop(api, core)
        api.block(SHOP)
        monday_afternoon.set(shanghai(2026, 11, 24, 9, 0))
        await dispatch_due(core)
        task = api.sent(STAFF_CHAT)[-1]
        assert "屏蔽机器人" in str(task.text)
    async with core.sessions() as session:
        merchant = await session.get(Merchant, merchant_id)
    assert merchant is not None and merchant.unreachable
    first = (await followups(core))[0]
    assert (first.status, first.escalation_reason) == ("escalated", "unreachable")


async def test_not_fixed_after_a_repair_reopens_the_ticket(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await shop(core)
        chat = Chat(api, SHOP)
        await chat.type("/repair")
        await chat.type("AB123456")
        await chat.press("Printing")
        await chat.press("Yes")
        await chat.type("prints blank receipts")
        await chat.press("Skip")
        await chat.press("Yes")  # the tips fixed it
        await chat.press("✅ Submit")
        assert "fixed remotely" in chat.last_text
        (repair,) = await followups(core)
        assert repair.kind == "repair" and repair.send_at == shanghai(2026, 11, 24, 9, 0)

        monday_afternoon.set(shanghai(2026, 11, 24, 9, 0))
        await dispatch_due(core)
        await chat.press("▶️ Start")
        await chat.press("No")
        await chat.type("blank receipts again since this morning")
        await chat.press("2★")
        await chat.press("Skip")
        await chat.press("Skip")
        await chat.press("✅ Submit", count=2)
        assert "is open again" in chat.last_text
        await api.wait_for(lambda: any("重新打开" in str(m.text) for m in api.sent(STAFF_CHAT)), timeout=STEP_TIMEOUT)
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket).where(Ticket.kind == "repair"))).scalar_one()
        finding = (await session.execute(select(Ticket).where(Ticket.kind == "finding"))).scalar_one()
    assert (ticket.status, ticket.reopen_count) == ("reopened", 1)
    assert ticket.sla_due_at is not None  # a fresh deadline from the reopening (it had none, resolved at once)
    assert finding.role == "aftersales" and "2★" in (finding.quote or "")  # the 2-star rating is looked into too


async def test_later_snoozes_and_stop_opts_out_of_routine_surveys_only(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await installed_shop(api, core)
        monday_afternoon.set(shanghai(2026, 11, 24, 18, 30))
        await dispatch_due(core)
        chat = Chat(api, SHOP)
        await chat.press("⏰ Later")
        assert "2026-11-25 09:00" in chat.last_text  # 18:30 + 3 h is past 20:00: the next morning
        first = (await followups(core))[0]
        assert (first.status, first.send_at) == ("scheduled", shanghai(2026, 11, 25, 9, 0))

        monday_afternoon.set(shanghai(2026, 11, 25, 9, 0))
        await dispatch_due(core)
        await chat.press("🔕 Stop these surveys")
        assert "no more routine surveys" in chat.last_text
        await api.wait_for(lambda: "退订" in str(api.sent(STAFF_CHAT)[-1].text), timeout=STEP_TIMEOUT)
    # The installation checks are mandated (001 §5): staff phone instead (tests/test_opt_out.py).
    statuses = {f.kind: (f.status, f.escalation_reason) for f in await followups(core)}
    assert statuses == {"install_first": ("escalated", "opted_out"), "install_second": ("escalated", "opted_out")}


async def test_install_is_refused_outside_the_staff_chat_and_changes_nothing(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        await shop(running.core)
        chat = Chat(api, SHOP)
        await chat.type("/install AB123456 13812345678")
        assert chat.last_text == "Only staff can do this."
        # Being in the staff group grants nothing by itself.
        before = len(api.sent(STAFF_CHAT))
        api.member_sends_text(STAFF_CHAT, GROUP_MEMBER, "/install AB123456 13812345678")
        await api.wait_for_messages(STAFF_CHAT, before + 1, timeout=STEP_TIMEOUT)
        assert api.sent(STAFF_CHAT)[-1].text == "仅限员工操作。"
        assert await followups(running.core) == []
        async with running.core.sessions() as session:
            refused = (await session.execute(select(StaffAudit.telegram_user_id, StaffAudit.action))).all()
        assert sorted(refused) == [(SHOP, "refused"), (GROUP_MEMBER, "refused")]
        reply = await staff_installs(api, "/install AB123456 13812345678 P300 2026-11-23 15:00")
        assert "已登记" in reply
        again = await staff_installs(api, "/install AB123456 13812345678 P300 2026-11-23 15:00")
        assert "未做更改" in again
        assert len(await followups(running.core)) == 2
        bad = await staff_installs(api, "/install AB123456 19999999999")
        assert "找不到" in bad and "199****9999" in bad  # the typed number comes back masked


async def test_an_answer_after_the_window_counts_as_late(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await installed_shop(api, core)
        monday_afternoon.set(shanghai(2026, 11, 24, 9, 0))
        await dispatch_due(core)
        monday_afternoon.advance(timedelta(days=5))
        await dispatch_due(core)  # escalated to staff; the merchant may still answer
        chat = Chat(api, SHOP)
        await chat.press("▶️ Start")
        await chat.press("No")
        await chat.type("screen stays black")
        for label in ("Yes", "3★", "No", "Yes", "Yes"):
            await chat.press(label)
        await chat.toggle("☐ Nothing")
        await chat.press("Done")
        await chat.press("Skip")
        await chat.press("✅ Submit")
    first = (await followups(core))[0]
    assert (first.status, first.outcome) == ("completed", "late")
