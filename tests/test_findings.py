"""Survey findings become cases: the answers that need a person, quoted to the role that handles them.

End to end for the merchant's side (the fake Bot API server); the group reads zh_CN.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, dispatch_due
from bot.clock import FrozenClock
from bot.domain.findings import DEFAULT_FINDINGS, findings_in
from bot.domain.followup_policy import load_policy
from bot.storage.models import FollowUp, Ticket, TicketEvent
from tests.conftest import STAFF_CHAT, add_staff
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings
from tests.test_followups_e2e import GROUP_MEMBER, SHOP, STAFF_MEMBER, installed_shop, shanghai

ENGINEER = 900003


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[STAFF_MEMBER, GROUP_MEMBER, ENGINEER])
        yield server


@pytest.fixture
def monday_afternoon() -> FrozenClock:
    return FrozenClock(shanghai(2026, 11, 23, 16, 0))


async def first_check(api: FakeBotAPI, core: Core, clock: FrozenClock) -> Chat:
    """The installation check is in the merchant's chat, started."""
    await installed_shop(api, core)
    clock.set(shanghai(2026, 11, 24, 9, 5))
    await dispatch_due(core)
    chat = Chat(api, SHOP)
    await chat.press("▶️ Start")
    return chat


async def findings(core: Core) -> list[Ticket]:
    async with core.sessions() as session:
        found = await session.execute(select(Ticket).where(Ticket.kind == "finding").order_by(Ticket.id))
        return list(found.scalars())


async def case_message(api: FakeBotAPI, number: str) -> Any:
    await api.wait_for(lambda: any(number in str(m.text) for m in api.sent(STAFF_CHAT)), timeout=STEP_TIMEOUT)
    return next(m for m in api.sent(STAFF_CHAT) if number in str(m.text) and "🔎" in str(m.text))


async def test_not_working_at_installation_opens_one_case_for_sales_quoting_every_answer(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        chat = await first_check(api, core, monday_afternoon)
        await chat.press("No")
        await chat.type("screen stays black")
        for label in ("Yes", "4★", "Yes", "Yes", "Yes"):
            await chat.press(label)
        await chat.toggle("☐ More training")  # a second rule met in the same survey: still one case
        await chat.press("Done")
        await chat.press("Skip")
        await chat.press("✅ Submit")
        (finding,) = await findings(core)
        message = await case_message(api, str(finding.number))
        text = str(message.text)
        assert "终端无法正常使用" in text and "screen stays black" in text and "需要培训" in text
        labels = [label for label, _ in api.buttons(message)]
        assert "🙋 接单" in labels and "📞 联系商户" in labels
        assert "13812345678" not in text
    assert (finding.role, finding.severity, finding.status) == ("sales", "urgent", "new")
    async with core.sessions() as session:
        followup = (await session.execute(select(FollowUp).where(FollowUp.kind == "install_first"))).scalar_one()
    assert finding.followup_id == followup.id and finding.merchant_id == followup.merchant_id


async def test_a_one_star_rating_opens_a_case_and_staff_can_open_a_repair_ticket_from_it(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
        chat = await first_check(api, core, monday_afternoon)
        for label in ("Yes", "Yes", "1★", "Yes", "Yes", "Yes"):
            await chat.press(label)
        await chat.toggle("☐ Nothing")
        await chat.press("Done")
        await chat.press("Skip")
        await chat.press("✅ Submit")
        (finding,) = await findings(core)
        assert "1★" in str((await case_message(api, str(finding.number))).text)
        # The case message itself carries "open a repair ticket", beside Take and Call.
        offer = await case_message(api, str(finding.number))
        data = dict(api.buttons(offer))["🔧 为商户开立维修工单"]
        assert {"🙋 接单", "📞 联系商户"} <= set(dict(api.buttons(offer)))

        answers = len(api.callback_answers)
        api.member_presses(STAFF_CHAT, GROUP_MEMBER, offer, data)  # not staff: refused, nothing opened
        await api.wait_for(lambda: len(api.callback_answers) > answers, timeout=STEP_TIMEOUT)
        assert api.callback_answers[-1]["text"] == "仅限员工操作。"

        api.member_presses(STAFF_CHAT, ENGINEER, offer, data)
        await api.wait_for(lambda: offer.edits == 1, timeout=STEP_TIMEOUT)
        assert "🔧 为商户开立维修工单" not in dict(api.buttons(offer))  # opened once: the button is gone
        await api.wait_for(lambda: "Wang Gong" in str(api.sent(STAFF_CHAT)[-1].text), timeout=STEP_TIMEOUT)
        await api.wait_for(lambda: "repair ticket R-" in str(api.sent(SHOP)[-1].text), timeout=STEP_TIMEOUT)
    assert (finding.role, finding.severity) == ("sales", "normal")
    async with core.sessions() as session:
        repair = (await session.execute(select(Ticket).where(Ticket.kind == "repair"))).scalar_one()
        linked = (await session.execute(select(TicketEvent).where(TicketEvent.action == "repair_opened"))).scalar_one()
    assert (repair.role, repair.serial, repair.merchant_id) == ("aftersales", "AB123456", finding.merchant_id)
    assert linked.ticket_id == finding.id and linked.detail["repair"] == repair.number
    assert linked.actor == f"staff:{ENGINEER}"


async def test_a_training_request_opens_a_case_for_sales(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        chat = await first_check(api, core, monday_afternoon)
        for label in ("Yes", "Yes", "5★", "Yes", "Yes", "Yes"):
            await chat.press(label)
        await chat.toggle("☐ More training")
        await chat.press("Done")
        await chat.press("Skip")
        await chat.press("✅ Submit")
        (finding,) = await findings(core)
        assert "需要培训" in str((await case_message(api, str(finding.number))).text)
    assert finding.role == "sales"


def test_the_packaged_policy_spells_out_the_default_finding_rules() -> None:
    assert set(load_policy().desk.findings) == set(DEFAULT_FINDINGS)


def test_finding_rules_read_ratings_nps_yes_no_and_choices() -> None:
    rules = DEFAULT_FINDINGS
    assert [r.reason for r in findings_in(rules, "routine", {"attitude": 2, "recommend": 7})] == ["low_rating"]
    assert [r.reason for r in findings_in(rules, "routine", {"attitude": 3, "recommend": 6})] == ["low_nps"]
    assert findings_in(rules, "routine", {"attitude": None, "recommend": 10}) == []  # skipped says nothing
    assert [r.reason for r in findings_in(rules, "key_account", {"maintenance_ok": False})] == ["fault"]
    needs = findings_in(rules, "install_second", {"needs": ["upgrade", "training"]})
    assert sorted(r.reason for r in needs) == ["needs_devices", "needs_training"]
    assert findings_in(rules, "install_first", {"working": True, "needs": ["none"]}) == []
