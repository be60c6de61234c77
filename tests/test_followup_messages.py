"""What merchants and staff read when a follow-up goes out, through the real aiogram Bot and the fake server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.channels.telegram import TelegramMessenger
from bot.delivery.outbox import Outbox
from bot.scheduling.followups import FollowUpDispatcher
from bot.scheduling.periodic import plan_key_accounts, plan_routine
from bot.storage.models import Conversation, FollowUp, Merchant
from tests.conftest import STAFF_CHAT, linked_merchant
from tests.fakes import FakeBotAPI
from tests.telegram_harness import telegram_messenger

TOKEN = "123456:TEST-token"
SHOP = 717171
STAFF_MEMBER = 900001


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[STAFF_MEMBER])
        yield server


@pytest.fixture
async def telegram(api: FakeBotAPI) -> AsyncIterator[TelegramMessenger]:
    async with telegram_messenger(api) as messenger:
        yield messenger


def dispatcher_for(core: Core, messenger: Any) -> FollowUpDispatcher:
    return FollowUpDispatcher(
        core.sessions, messenger, core.clock, core.policy, core.calendar, staff_chat_id=STAFF_CHAT
    )


async def test_a_survey_telegram_refuses_reaches_staff_with_telegrams_reason(
    core: Core, api: FakeBotAPI, telegram: TelegramMessenger
) -> None:
    # Linked in our records, but Telegram knows no such chat: sendMessage answers 400 for it.
    await linked_merchant(core, SHOP, name="Golden Dumplings", phone="13812345678")
    assert await plan_routine(core.sessions, core.policy, core.calendar, core.clock) == 1

    report = await dispatcher_for(core, telegram).tick()
    await Outbox(core.sessions, telegram, core.clock).deliver()

    assert report.escalated == 1
    (refused,) = [call for call in api.calls("sendMessage") if call.status != 200]
    assert int(refused.params["chat_id"]) == SHOP
    assert (refused.status, refused.description) == (400, "Bad Request: chat not found")
    (task,) = api.texts(STAFF_CHAT)
    assert task is not None
    assert "原因：Telegram 拒收了该消息（“chat not found”）" in task
    assert "尚未绑定" not in task  # the merchant is linked: that is not what happened
    assert "138****5678" in task and "13812345678" not in task
    async with core.sessions() as session:
        (followup,) = (await session.execute(select(FollowUp))).scalars()
    assert (followup.status, followup.escalation_reason) == ("escalated", "rejected")


async def key_account(core: Core, user_id: int, name: str, locale: str) -> None:
    merchant_id = await linked_merchant(
        core, user_id, name=name, phone=None, terminals=[(f"KA{user_id}1", "P300"), (f"KA{user_id}2", "P300")]
    )
    async with core.sessions() as session, session.begin():
        merchant = await session.get(Merchant, merchant_id)
        conversation = await session.get(Conversation, user_id)
        assert merchant is not None and conversation is not None
        merchant.key_account = True
        conversation.locale = locale


async def test_the_quarterly_key_account_invitation_reads_well_without_a_terminal(
    core: Core, api: FakeBotAPI, telegram: TelegramMessenger
) -> None:
    api.add_user(SHOP, first_name="Zhang", language_code="en")
    api.add_user(SHOP + 1, first_name="Li", language_code="zh-hans")
    await key_account(core, SHOP, "Golden Dumplings", "en")
    await key_account(core, SHOP + 1, "金饺子", "zh_CN")
    assert await plan_key_accounts(core.sessions, core.policy, core.calendar, core.clock) == 2

    assert (await dispatcher_for(core, telegram).tick()).sent == 2

    assert api.texts(SHOP) == [
        "Hello Golden Dumplings! Time for our quarterly service review of your terminals: "
        "“Quarterly key-account review” takes about a minute."
    ]
    assert api.texts(SHOP + 1) == ["金饺子您好！这是本季度对您各台终端的服务回访。“重点客户季度回访”大约只需一分钟。"]
    assert [label for label, _ in api.buttons(api.last(SHOP))] == ["▶️ Start", "⏰ Later", "🔕 Stop these surveys"]
