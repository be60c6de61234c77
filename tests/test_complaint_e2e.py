"""A complaint from first word to "satisfied", end to end (issue 9, the first test of its Tests section):
the real bot polling the fake Bot API server, the merchant in their chat, the staff in the group, and a
frozen clock the test moves to the follow-ups' due times.

The merchant speaks English; the staff group reads the default language, zh_CN.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, dispatch_due
from bot.clock import FrozenClock
from bot.storage.models import Attachment, FollowUp, Ticket, TicketEvent
from tests.conftest import SHANGHAI, STAFF_CHAT, add_staff, linked_merchant
from tests.fakes import FakeBotAPI
from tests.fakes.messages import SentMessage
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings

SHOP = 676767
SUPERVISOR = 910001
SECOND_SUPERVISOR = 910002
HANDLER = 910003  # customer service, where [desk.complaints.routing] sends staff attitude
PHONE = "13812345678"


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_group(STAFF_CHAT, title="Staff", members=[SUPERVISOR, SECOND_SUPERVISOR, HANDLER])
        yield server


def mentioned(message: SentMessage) -> list[tuple[str, int]]:
    """The names Telegram highlights, cut out of the text by the entities' UTF-16 offsets."""
    units = str(message.text).encode("utf-16-le")
    return [
        (units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le"), e["user"]["id"])
        for e in message.entities
        if e["type"] == "text_mention"
    ]


class Group:
    """The staff group as the handler sees it: they press the case's buttons and reply to the bot."""

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api

    def seen(self) -> list[SentMessage]:
        return self.api.sent(STAFF_CHAT)

    def texts(self, since: int = 0) -> list[str]:
        return [str(m.text) for m in self.seen()[since:]]

    def newest(self, label: str) -> SentMessage:
        """The newest message in the group with a button `label`."""
        for message in reversed(self.seen()):
            if any(text == label for text, _ in self.api.buttons(message)):
                return message
        raise AssertionError(f"no button {label!r} in the group; last: {self.seen()[-1].text!r}")

    async def press(self, label: str, then: Callable[[], bool], message: SentMessage | None = None) -> None:
        message = message or self.newest(label)
        data = dict(self.api.buttons(message))[label]
        answers = len(self.api.callback_answers)
        self.api.member_presses(STAFF_CHAT, HANDLER, message, data)
        await self.api.wait_for(lambda: len(self.api.callback_answers) > answers and then(), timeout=STEP_TIMEOUT)

    async def prompted(self, since: int, says: str) -> SentMessage:
        """The bot's question to staff (answered by replying to it), sent after message `since`."""
        await self.api.wait_for(lambda: any(says in text for text in self.texts(since)), timeout=STEP_TIMEOUT)
        return next(m for m in self.seen()[since:] if says in str(m.text))

    async def reply(self, to: SentMessage, text: str, then: Callable[[], bool]) -> None:
        self.api.member_sends_text(STAFF_CHAT, HANDLER, text, reply_to=to)
        await self.api.wait_for(then, timeout=STEP_TIMEOUT)


async def the_team(core: Core) -> None:
    await add_staff(core, SUPERVISOR, "supervisor", "李主管")
    await add_staff(core, SECOND_SUPERVISOR, "supervisor", "Zhang Wei")
    await add_staff(core, HANDLER, "service", "Xiao Chen")
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE, terminals=[("AB123456", "P300")])


async def the_complaint(core: Core) -> Ticket:
    async with core.sessions() as session:
        return (await session.execute(select(Ticket))).scalar_one()


async def the_events(core: Core, ticket_id: int) -> list[tuple[str, str]]:
    async with core.sessions() as session:
        rows = await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return [(e.action, e.actor) for e in rows.scalars()]


async def the_followups(core: Core) -> list[FollowUp]:
    async with core.sessions() as session:
        return list((await session.execute(select(FollowUp).order_by(FollowUp.id))).scalars())


async def files_a_complaint(api: FakeBotAPI, chat: Chat) -> str:
    """Staff attitude, two photos, an apology wanted; what the bot said once it was submitted."""
    await chat.type("/complaint")
    assert "What is your complaint about?" in chat.last_text
    await chat.press("Staff attitude")
    await chat.type("The engineer shouted at my cashier and refused to fix the printer.")
    await chat.type("11-20 14:30")
    await chat.type("The engineer called Zhao, Xuhui team")
    for file_id in ("CHAT-SCREENSHOT", "RECEIPT"):
        before = len(chat.seen())
        api.user_sends_photo(SHOP, file_id)
        await api.wait_for_messages(SHOP, before + 1, timeout=STEP_TIMEOUT)
    await chat.press("Done")
    await chat.press("An apology")
    await chat.press("Use 138****5678")
    assert "Staff attitude" in chat.last_text and "2 file(s)" in chat.last_text
    await chat.press("✅ Submit")
    return chat.last_text


async def answers_the_follow_up(
    api: FakeBotAPI, core: Core, clock: FrozenClock, chat: Chat, *, satisfied: bool
) -> SentMessage:
    """The one post-complaint follow-up still to go, sent when it is due and answered; its invitation."""
    (due,) = [f for f in await the_followups(core) if f.kind == "complaint" and f.status == "scheduled"]
    before = len(chat.seen())
    clock.set(due.send_at)
    await dispatch_due(core)
    await api.wait_for_messages(SHOP, before + 1, timeout=STEP_TIMEOUT)
    invitation: SentMessage = chat.seen()[-1]
    assert "We recently handled your complaint" in str(invitation.text)
    await chat.press("▶️ Start")
    assert "Are you satisfied with how your complaint was handled?" in chat.last_text
    if satisfied:
        await chat.press("Yes")
    else:
        await chat.press("No")
        assert "What are you still unhappy with?" in chat.last_text
        await chat.type("Nobody called to apologise, and the refund never arrived.")
    await chat.press("4★")  # handling speed
    await chat.press("4★")  # staff attitude
    await chat.press("Skip")
    before = len(chat.seen())
    api.user_presses(SHOP, *chat.find_button("✅ Submit"))  # thanks, and when not satisfied: reopened
    await api.wait_for(
        lambda: any("Thank you for your answers!" in str(m.text) for m in chat.seen()[before:]), timeout=STEP_TIMEOUT
    )
    return invitation


async def test_a_complaint_is_heard_worked_and_followed_up_until_the_merchant_is_satisfied(
    api: FakeBotAPI, sqlite_url: str
) -> None:
    clock = FrozenClock(shanghai(2026, 11, 23, 10, 0))  # a Monday morning
    async with running_bot(api, telegram_settings(sqlite_url, api), clock) as running:
        core = running.core
        await the_team(core)
        merchant, group = Chat(api, SHOP), Group(api)

        # ---- filed in the chat: the case is in the group at once, the supervisors mentioned by name ----
        told = await files_a_complaint(api, merchant)
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)
        opened = await the_complaint(core)
        number = str(opened.number)
        assert number == f"C-2026-{opened.id:06d}"
        assert f"Your complaint is recorded as {number}" in told and "a supervisor has been told" in told
        (case,) = group.seen()
        assert str(case.text).startswith("⚠️ 严重投诉，请主管立即处理：")
        assert mentioned(case) == [("Zhang Wei", SECOND_SUPERVISOR), ("李主管", SUPERVISOR)]
        assert f"📣 投诉 {number}" in str(case.text) and "投诉类型：服务态度" in str(case.text)
        assert "电话：138****5678" in str(case.text) and "📎 照片和文件：2 个" in str(case.text)
        assert (opened.status, opened.category, opened.serious, opened.role) == (
            "new",
            "staff_attitude",
            True,
            "service",
        )

        # ---- taken by customer service ----
        await group.press(
            "🙋 接单",
            then=lambda: (
                any(f"{number} is being handled by Xiao Chen" in str(m.text) for m in merchant.seen())
                and "处理人：Xiao Chen" in str(case.text)  # the case message, edited in place
            ),
        )
        assert case.edits >= 1 and "状态：已受理" in str(case.text)

        # ---- a question relayed to the merchant; their plain answer comes back under the case ----
        since = len(group.seen())
        await group.press("❓ 询问商户", then=lambda: len(group.seen()) > since)
        prompt = await group.prompted(since, f"{number}：请回复本消息，写下要问商户的问题")
        question = "Which day was it, and was the cashier's name Li?"
        await group.reply(prompt, question, then=lambda: question in merchant.last_text)
        assert f"About your complaint {number}, our team asks:" in merchant.last_text
        since = len(group.seen())
        await merchant.type("Friday afternoon; yes, Li Mei. Call her on 13912345678 if needed.")
        assert f"Your answer was passed to the team handling complaint {number}" in merchant.last_text
        await api.wait_for(lambda: any("商户已回答" in text for text in group.texts(since)), timeout=STEP_TIMEOUT)
        answered = next(m for m in group.seen()[since:] if "商户已回答" in str(m.text))
        assert f"问题：{question}" in str(answered.text)
        assert "回答：Friday afternoon; yes, Li Mei. Call her on 139****5678 if needed." in str(answered.text)
        assert answered.reply_to_message_id == case.message_id  # under the case

        # ---- a first solution, rejected: the case is posted again with the supervisors mentioned ----
        async def proposes(outcome: str, text: str) -> SentMessage:
            since = len(group.seen())
            await group.press("💡 提出解决方案", then=lambda: any("哪类解决方案" in t for t in group.texts(since)))
            since = len(group.seen())
            await group.press(outcome, then=lambda: len(group.seen()) > since)
            prompt = await group.prompted(since, f"{number} · {outcome}：请回复本消息")
            before = len(merchant.seen())
            await group.reply(prompt, text, then=lambda: any(text in str(m.text) for m in merchant.seen()[before:]))
            proposal: SentMessage = merchant.seen()[-1]
            assert f"Our proposal for your complaint {number}" in str(proposal.text)
            assert [label for label, _ in api.buttons(proposal)] == ["✅ Accept", "❌ Reject"]
            return proposal

        first = await proposes("道歉", "Our engineer will apologise to your cashier in person on Friday.")
        since = len(group.seen())
        api.user_presses(SHOP, first, dict(api.buttons(first))["❌ Reject"])
        await api.wait_for(lambda: "You rejected the proposal" in str(first.text), timeout=STEP_TIMEOUT)
        assert api.buttons(first) == []  # the answer given, in place of the question
        await api.wait_for(lambda: any("商户不接受解决方案" in t for t in group.texts(since)), timeout=STEP_TIMEOUT)
        again = next(m for m in group.seen()[since:] if "商户不接受解决方案" in str(m.text))
        assert str(again.text).startswith(f"❌ {number}：商户不接受解决方案（道歉）")
        assert "请主管关注：" in str(again.text) and f"📣 投诉 {number}" in str(again.text)
        assert mentioned(again) == [("Zhang Wei", SECOND_SUPERVISOR), ("李主管", SUPERVISOR)]
        rejected = await the_complaint(core)
        assert (rejected.status, rejected.proposal, rejected.agreed_outcome) == ("taken", None, None)

        # ---- a new solution, accepted: resolved with the agreed outcome ----
        second = await proposes("退款或赔偿", "We refund the installation fee of 200 yuan within 3 days.")
        since = len(group.seen())
        api.user_presses(SHOP, second, dict(api.buttons(second))["✅ Accept"])
        await api.wait_for(lambda: "You accepted the proposal" in str(second.text), timeout=STEP_TIMEOUT)
        assert f"complaint {number}: Refund or compensation" in str(second.text)
        await api.wait_for(
            lambda: any(f"{number}：商户已接受解决方案（退款或赔偿）" in t for t in group.texts(since)),
            timeout=STEP_TIMEOUT,
        )
        resolved = await the_complaint(core)
        assert (resolved.status, resolved.agreed_outcome) == ("resolved", "refund")
        handler = resolved.assignee_id
        assert handler is not None

        # ---- closed by staff: the post-complaint follow-up waits for its day ----
        await group.press("🗂 关闭", then=lambda: any(f"{number} is closed" in str(m.text) for m in merchant.seen()))
        closed = await the_complaint(core)
        assert closed.status == "closed" and closed.closed_at is not None
        (planned,) = await the_followups(core)
        assert (planned.kind, planned.form_key, planned.status) == ("complaint", "post_complaint", "scheduled")
        assert planned.ticket_id == closed.id and planned.send_at > clock.now()

        # ---- "not satisfied": reopened, count 1, same handler, posted again in the group ----
        since = len(group.seen())
        await answers_the_follow_up(api, core, clock, merchant, satisfied=False)
        await api.wait_for(
            lambda: any(f"{number} is open again" in str(m.text) for m in merchant.seen()), timeout=STEP_TIMEOUT
        )

        def case_again() -> SentMessage:
            return next(m for m in group.seen()[since:] if f"📣 投诉 {number}" in str(m.text) and api.buttons(m))

        await api.wait_for(
            lambda: any(f"回访后工单 {number} 重新打开" in t for t in group.texts(since)) and case_again() is not None,
            timeout=STEP_TIMEOUT,
        )
        reposted = case_again()
        assert "已重新打开 1 次" in str(reposted.text) and "处理人：Xiao Chen" in str(reposted.text)
        assert mentioned(reposted) == []  # the first reopening goes back to the handler, no supervisor called
        assert "仍存在的问题：Nobody called to apologise" in "\n".join(group.texts(since))
        reopened = await the_complaint(core)
        assert (reopened.status, reopened.reopen_count, reopened.assignee_id) == ("reopened", 1, handler)

        # ---- resolved and closed again; the next follow-up answered "satisfied": it stays closed ----
        def told_since(before: int, said: str) -> Callable[[], bool]:
            return lambda: any(said in str(m.text) for m in merchant.seen()[before:])

        await group.press("✅ 已解决", then=told_since(len(merchant.seen()), f"{number} is resolved"), message=reposted)
        await group.press("🗂 关闭", then=told_since(len(merchant.seen()), f"{number} is closed"), message=reposted)
        assert (await the_complaint(core)).status == "closed"
        await answers_the_follow_up(api, core, clock, merchant, satisfied=True)

    final = await the_complaint(core)
    assert (final.status, final.category, final.agreed_outcome, final.reopen_count, final.serious) == (
        "closed",
        "staff_attitude",
        "refund",
        1,
        True,
    )
    assert final.assignee_id == handler
    staff, shop = f"staff:{HANDLER}", f"merchant:{SHOP}"
    assert await the_events(core, final.id) == [
        ("created", shop),
        ("take", staff),
        ("question_asked", staff),
        ("merchant_answered", shop),
        ("solution_proposed", staff),
        ("proposal_rejected", shop),
        ("solution_proposed", staff),
        ("resolved", shop),
        ("close", staff),
        ("reopened", shop),
        ("resolved", staff),
        ("close", staff),
    ]
    async with core.sessions() as session:
        reopening = (await session.execute(select(TicketEvent).where(TicketEvent.action == "reopened"))).scalar_one()
    assert reopening.detail["reason"] == "Nobody called to apologise, and the refund never arrived."
    # One follow-up for each resolution, both answered in their window; no survey finding besides.
    assert [(f.kind, f.ticket_id, f.status, f.outcome) for f in await the_followups(core)] == [
        ("complaint", final.id, "completed", "on_time"),
        ("complaint", final.id, "completed", "on_time"),
    ]
    async with core.sessions() as session:
        files = list((await session.execute(select(Attachment).order_by(Attachment.id))).scalars())
    assert [(f.file_id, f.ticket_id) for f in files] == [("CHAT-SCREENSHOT", final.id), ("RECEIPT", final.id)]
