"""Call tasks that can be done, end to end: take the call, the number privately, the answers by phone.

The staff group reads zh_CN (the default); the staff member's own Telegram speaks English, so their
direct chat with the bot is in English.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, dispatch_due
from bot.clock import FrozenClock
from bot.delivery.callbacks import CallTask
from bot.storage.models import Answer, StaffAudit, Submission
from tests.conftest import STAFF_CHAT
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings
from tests.test_followups_e2e import GROUP_MEMBER, SHOP, STAFF_MEMBER, followups, installed_shop, shanghai


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_user(STAFF_MEMBER, first_name="Wang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[STAFF_MEMBER, GROUP_MEMBER])
        yield server


@pytest.fixture
def monday_afternoon() -> FrozenClock:
    return FrozenClock(shanghai(2026, 11, 23, 16, 0))


async def call_task(api: FakeBotAPI, core: Core, clock: FrozenClock) -> Any:
    """The first installation check went unanswered: its call task in the staff group."""
    await installed_shop(api, core)
    clock.set(shanghai(2026, 11, 24, 9, 0))
    await dispatch_due(core)
    clock.set(shanghai(2026, 11, 26, 20, 1))  # the window closed at 20:00 on working day 3
    await dispatch_due(core)
    task = api.sent(STAFF_CHAT)[-1]
    assert "请致电商户" in str(task.text)
    return task


def group_never_saw_the_number(api: FakeBotAPI) -> None:
    assert not any("13812345678" in str(m.text) for m in api.sent(STAFF_CHAT))


async def test_a_call_task_taken_gives_the_number_privately_and_the_phoned_answers_complete_the_follow_up(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        task = await call_task(api, core, monday_afternoon)
        buttons = dict(api.buttons(task))
        assert list(buttons) == ["📞 接单致电", "📞 已联系上", "❌ 未联系上"]

        # Being in the group is not being staff: refused, and the number goes nowhere.
        answers = len(api.callback_answers)
        api.member_presses(STAFF_CHAT, GROUP_MEMBER, task, buttons["📞 接单致电"])
        await api.wait_for(lambda: len(api.callback_answers) > answers, timeout=STEP_TIMEOUT)
        assert api.callback_answers[-1]["text"] == "仅限员工操作。"
        assert api.sent(GROUP_MEMBER) == []

        api.member_presses(STAFF_CHAT, STAFF_MEMBER, task, buttons["📞 接单致电"])
        await api.wait_for_messages(STAFF_MEMBER, 1, timeout=STEP_TIMEOUT)
        private = api.sent(STAFF_MEMBER)[0]
        assert "+8613812345678" in str(private.text) and "Golden Dumplings" in str(private.text)
        await api.wait_for(lambda: task.edits == 1, timeout=STEP_TIMEOUT)
        assert "staff 900001" in str(task.text)  # who took it (the name staff gave them)
        assert "📞 接单致电" in dict(api.buttons(task))  # still open until the answers are in
        group_never_saw_the_number(api)

        staff = Chat(api, STAFF_MEMBER)
        await staff.press("📝 Record the answers", count=2)
        assert "Recording Golden Dumplings's answers" in str(staff.seen()[-2].text)
        assert "Is your new terminal installed and working normally?" in staff.last_text
        await staff.press("Yes")
        for label in ("Yes", "4★", "Yes", "Yes", "Yes"):
            await staff.press(label)
        await staff.toggle("☐ Nothing")
        await staff.press("Done")
        await staff.press("Skip")
        await staff.press("✅ Submit")
        await api.wait_for(lambda: "answers are recorded" in staff.last_text, timeout=STEP_TIMEOUT)
        await api.wait_for(lambda: task.edits == 2, timeout=STEP_TIMEOUT)
        assert "已通过电话录入回答" in str(task.text) and api.buttons(task) == []
        assert api.sent(SHOP)[-1].text is not None and "Thank you" not in str(api.sent(SHOP)[-1].text)
        group_never_saw_the_number(api)

    first = (await followups(core))[0]
    assert (first.status, first.method, first.handled_by, first.outcome) == ("completed", "phone", STAFF_MEMBER, "late")
    async with core.sessions() as session:
        submission = (await session.execute(select(Submission))).scalar_one()
        answered = {a.question_key: a.value for a in (await session.execute(select(Answer))).scalars()}
        seen = (await session.execute(select(StaffAudit).where(StaffAudit.action == "phone_revealed"))).scalar_one()
    assert (submission.method, submission.operator_id, submission.merchant_id, submission.followup_id) == (
        "phone",
        STAFF_MEMBER,
        first.merchant_id,
        first.id,
    )
    assert submission.status == "submitted"
    # The same Answer rows a merchant's own answers make: they count alike.
    assert answered["working"] is True and answered["training"] == 4 and answered["needs"] == ["none"]
    assert (seen.telegram_user_id, seen.subject) == (STAFF_MEMBER, f"followup:{first.id}")


async def test_a_merchant_cannot_record_answers_by_phone(
    api: FakeBotAPI, sqlite_url: str, monday_afternoon: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_afternoon) as running:
        core = running.core
        await call_task(api, core, monday_afternoon)
        (first, *_) = await followups(core)
        invitation = api.sent(SHOP)[0]
        answers = len(api.callback_answers)
        for action in ("take", "record"):
            forged = CallTask(first.id, action).pack()  # type: ignore[arg-type]
            api.user_presses(SHOP, invitation, forged, forged=True)
        await api.wait_for(lambda: len(api.callback_answers) >= answers + 2, timeout=STEP_TIMEOUT)
        assert [a["text"] for a in api.callback_answers[-2:]] == ["Only staff can do this."] * 2
    async with core.sessions() as session:
        assert (await session.execute(select(Submission))).first() is None
        refused = (await session.execute(select(StaffAudit.action).where(StaffAudit.telegram_user_id == SHOP))).all()
    assert [r[0] for r in refused] == ["refused", "refused"]
    first = (await followups(core))[0]
    assert (first.status, first.handled_by) == ("escalated", None)
    assert len(api.sent(SHOP)) == 1  # the invitation, and nothing with a number in it
