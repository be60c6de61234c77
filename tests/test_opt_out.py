"""Stopping the surveys (001 §5): routine ones stop; installation checks and key-account reviews are
mandated, so staff phone instead, and are told exactly what changed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, dispatch_due
from bot.clock import FrozenClock
from bot.scheduling.periodic import plan_key_accounts
from bot.services.followups import followup_row, periodic_plan
from bot.services.merchants import add_merchant
from bot.storage.models import FollowUp, Merchant
from tests.conftest import STAFF_CHAT, RecordingMessenger
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings
from tests.test_followups_e2e import GROUP_MEMBER, SHOP, STAFF_MEMBER, followups, installed_shop, shanghai


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[STAFF_MEMBER, GROUP_MEMBER])
        yield server


async def routine_survey(core: Core, merchant_id: int) -> None:
    """This month's routine survey, drawn for this merchant and not sent yet."""
    async with core.sessions() as session, session.begin():
        now = core.clock.now()
        plan = periodic_plan(core.policy, core.calendar, "routine", now)
        session.add(followup_row(plan, f"routine:2026-11:{merchant_id}", merchant_id, "routine", now, now))


async def test_opting_out_keeps_the_installation_follow_ups_as_call_tasks_and_tells_staff_what_changed(
    api: FakeBotAPI, sqlite_url: str
) -> None:
    clock = FrozenClock(shanghai(2026, 11, 23, 16, 0))
    async with running_bot(api, telegram_settings(sqlite_url, api), clock) as running:
        core = running.core
        merchant_id = await installed_shop(api, core)
        clock.set(shanghai(2026, 11, 24, 9, 0))
        await routine_survey(core, merchant_id)
        await dispatch_due(core)
        chat = Chat(api, SHOP)
        before = len(api.sent(STAFF_CHAT))
        await chat.press("🔕 Stop these surveys")
        assert "no more routine surveys" in chat.last_text and "still phone you" in chat.last_text
        await api.wait_for_messages(STAFF_CHAT, before + 2, timeout=STEP_TIMEOUT)
        task, notice = sorted(api.sent(STAFF_CHAT)[before:], key=lambda m: "退订" in str(m.text))
        # Exactly what changed: the routine survey cancelled, both installation checks phoned instead.
        first, second, routine = await followups(core)
        assert f"已取消：例行回访 #{routine.id}" in str(notice.text)
        assert f"装机首次回访 #{first.id}（自 2026-11-24 09:00 起）" in str(notice.text)
        assert f"装机二次回访 #{second.id}（自 2026-12-03 09:00 起）" in str(notice.text)
        # The first check is due now: its call task is in the group at once, with the number masked.
        assert "商户已退订问卷，但该回访为必做项" in str(task.text) and "装机首次回访" in str(task.text)
        assert "138****5678" in str(task.text) and "13812345678" not in str(task.text)
        assert "📞 接单致电" in dict(api.buttons(task))

        # The second shows when it would have been sent, not before.
        clock.set(shanghai(2026, 12, 3, 8, 59))
        await dispatch_due(core)
        assert len(api.sent(STAFF_CHAT)) == before + 2
        clock.set(shanghai(2026, 12, 3, 9, 0))
        await dispatch_due(core)
        await api.wait_for_messages(STAFF_CHAT, before + 3, timeout=STEP_TIMEOUT)
        assert "装机二次回访" in str(api.sent(STAFF_CHAT)[-1].text)
        assert len(api.sent(SHOP)) == 3  # two invitations and "stopped": nothing more for the merchant

    rows = {f.kind: (f.status, f.escalation_reason or f.outcome) for f in await followups(core)}
    assert rows == {
        "install_first": ("escalated", "opted_out"),
        "install_second": ("escalated", "opted_out"),
        "routine": ("cancelled", "opted_out"),
    }


async def key_accounts(core: Core) -> dict[str, int]:
    """Four key accounts: one the chat reaches, and three it does not, each for its own reason."""
    ids = {}
    async with core.sessions() as session, session.begin():
        for number, name in enumerate(("reachable", "never linked", "blocked the bot", "stopped surveys")):
            merchant = await add_merchant(
                session, name=name, phone=f"1381234000{number}", now=core.clock.now(), key_account=True
            )
            merchant.telegram_user_id = None if name == "never linked" else 7_000_000 + number
            merchant.unreachable = name == "blocked the bot"
            merchant.routine_opt_out = name == "stopped surveys"
            await session.flush()
            ids[name] = merchant.id
        plain = await add_merchant(session, name="not a key account", phone=None, now=core.clock.now())
        plain.telegram_user_id = 7_000_100
    return ids


async def test_the_quarterly_review_covers_every_key_account_and_phones_those_the_chat_cannot_reach(
    core: Core,
) -> None:
    ids = await key_accounts(core)
    assert await plan_key_accounts(core.sessions, core.policy, core.calendar, core.clock, calls=core.calls) == 4
    assert await plan_key_accounts(core.sessions, core.policy, core.calendar, core.clock, calls=core.calls) == 0
    async with core.sessions() as session:
        rows = {f.merchant_id: f for f in (await session.execute(select(FollowUp))).scalars()}
        names = {m.id: m.name for m in (await session.execute(select(Merchant))).scalars()}
    by_name = {names[m]: (f.status, f.escalation_reason) for m, f in rows.items()}
    assert by_name == {
        "reachable": ("scheduled", None),
        "never linked": ("escalated", "not_linked"),
        "blocked the bot": ("escalated", "unreachable"),
        "stopped surveys": ("escalated", "opted_out"),
    }
    await core.outbox.deliver()
    sent = core.outbox.messenger
    assert isinstance(sent, RecordingMessenger)
    tasks = sent.texts(STAFF_CHAT)
    assert len(tasks) == 3 and all("重点客户回访" in text for text in tasks)
    assert ids["reachable"] not in {f.merchant_id for f in rows.values() if f.status == "escalated"}


async def test_a_terminal_installed_after_the_merchant_opted_out_still_gets_its_check_by_phone(core: Core) -> None:
    """The opt-out came first; the installation checks planned later are call tasks when due, not dropped."""
    from datetime import timedelta

    from bot.services.installations import InstallationRequest, register_installation

    async with core.sessions() as session, session.begin():
        merchant = await add_merchant(session, name="Quiet Shop", phone="13812345678", now=core.clock.now())
        merchant.telegram_user_id, merchant.routine_opt_out = 7_000_200, True
        await register_installation(
            session,
            InstallationRequest("QS123456", "13812345678", "P300", core.clock.now()),
            core.policy,
            core.calendar,
            core.clock.now(),
        )
    core.clock.advance(timedelta(days=15))  # type: ignore[attr-defined]
    await core.dispatcher.tick()
    async with core.sessions() as session:
        rows = {f.kind: (f.status, f.escalation_reason) for f in (await session.execute(select(FollowUp))).scalars()}
    assert rows == {"install_first": ("escalated", "opted_out"), "install_second": ("escalated", "opted_out")}
