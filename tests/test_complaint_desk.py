"""Working a complaint from the staff group until the merchant is satisfied (issue 9, items 3 and 4).

The merchant speaks English; the staff group reads the default language, zh_CN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from unittest.mock import ANY

import pytest
from sqlalchemy import select

from bot.app import Core, dispatch_due
from bot.clock import FrozenClock
from bot.delivery.callbacks import CaseButton, ComplaintAnswer, ComplaintWork, unpack
from bot.services.turn import Incoming, StaffAction
from bot.services.updates import UpdateWork
from bot.storage.models import FollowUp, OutboxMessage, StaffAudit, Ticket, TicketEvent
from tests.conftest import SHANGHAI, STAFF_CHAT, RecordingMessenger, add_staff, linked_merchant
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings

SHOP = 525252
OTHER_SHOP = 535353
HANDLER = 710001
SUPERVISOR = 710002
STRANGER = 710099

STALE = "This question is closed."  # the merchant's stale-button answer, in English
_update_ids = iter(range(30_000, 40_000))


async def people(core: Core) -> int:
    await add_staff(core, HANDLER, "service", "Li Na")
    await add_staff(core, SUPERVISOR, "supervisor", "Zhao Zhuguan")
    await linked_merchant(core, OTHER_SHOP, name="Other Tea", phone="13911112222")
    return await linked_merchant(core, SHOP, name="Lucky Noodles", phone="13812345678")


async def open_complaint(core: Core, merchant_id: int) -> int:
    async def work(done: UpdateWork) -> None:
        ticket = Ticket(
            kind="complaint",
            status="new",
            category="staff_attitude",
            outcome_wanted="apology",
            merchant_id=merchant_id,
            telegram_user_id=SHOP,
            severity="normal",
            description="The engineer shouted at my cashier; call me on 13812345678",
            created_at=done.now,
            reopen_count=0,
        )
        await core.cases.open(done, ticket, actor=f"merchant:{SHOP}")

    await core.cases.updates.run(next(_update_ids), work)
    await core.outbox.deliver()
    async with core.sessions() as session:
        return int((await session.execute(select(Ticket.id).where(Ticket.kind == "complaint"))).scalar_one())


def messenger(core: Core) -> RecordingMessenger:
    sent = core.outbox.messenger
    assert isinstance(sent, RecordingMessenger)
    return sent


async def press(core: Core, user: int, data: object, message_id: int | None = 1) -> str | None:
    action = StaffAction(next(_update_ids), STAFF_CHAT, user, f"user {user}", message_id, "en")
    outcome = await core.registry.staff_buttons[type(data)](action, data)
    await core.outbox.deliver()
    return outcome.callback_text


async def prompt(core: Core, what: str) -> int:
    """The message id of the newest desk prompt `what` in the group."""
    async with core.sessions() as session:
        found = await session.execute(
            select(OutboxMessage.message_id)
            .where(OutboxMessage.purpose == f"ask:{what}")
            .order_by(OutboxMessage.id.desc())
        )
        message_id = found.scalars().first()
    assert message_id is not None, f"no prompt {what!r}"
    return message_id


async def staff_reply(core: Core, user: int, to_message: int, text: str) -> None:
    action = StaffAction(next(_update_ids), STAFF_CHAT, user, f"user {user}", reply_to_message_id=to_message)
    await core.team.reply(action, text)
    await core.outbox.deliver()


async def merchant_types(core: Core, text: str, user: int = SHOP) -> None:
    await core.service.handle(Incoming(user, user, "text", next(_update_ids), "en", text=text))
    await core.outbox.deliver()


async def merchant_presses(core: Core, data: str, user: int = SHOP, message_id: int | None = None) -> str | None:
    incoming = Incoming(user, user, "button", next(_update_ids), "en", data=data, message_id=message_id)
    outcome = await core.service.handle(incoming)
    await core.outbox.deliver()
    return outcome.callback_text


def buttons_to(core: Core, chat: int) -> list[tuple[str, str, int]]:
    """Every button the chat was shown, newest last: (label, callback data, message id)."""
    found = []
    for index, (chat_id, payload) in enumerate(messenger(core).sent, start=1):
        if chat_id == chat:
            for row in (payload.get("reply_markup") or {}).get("inline_keyboard", []):
                found += [(b["text"], b.get("callback_data", ""), payload.get("edit_message_id") or index) for b in row]
    return found


async def merchant_taps(core: Core, label: str) -> None:
    """The newest button with this label in the merchant's chat."""
    text, data, message_id = next(b for b in reversed(buttons_to(core, SHOP)) if b[0] == label)
    await merchant_presses(core, data, message_id=message_id)


async def the_ticket(core: Core, ticket_id: int) -> Ticket:
    async with core.sessions() as session:
        found = await session.get(Ticket, ticket_id)
        assert found is not None
        return found


async def events(core: Core, ticket_id: int) -> list[TicketEvent]:
    async with core.sessions() as session:
        rows = await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return list(rows.scalars())


async def complaint_followups(core: Core) -> list[FollowUp]:
    async with core.sessions() as session:
        rows = await session.execute(select(FollowUp).where(FollowUp.kind == "complaint").order_by(FollowUp.id))
        return list(rows.scalars())


async def propose(core: Core, ticket_id: int, outcome: Any, text: str) -> None:
    await press(core, HANDLER, ComplaintWork(ticket_id, "propose"))
    labels = [label for label, _, _ in buttons_to(core, STAFF_CHAT)[-5:]]
    assert labels == ["更换", "退款或赔偿", "解释说明", "道歉", "其他"]
    await press(core, HANDLER, ComplaintWork(ticket_id, "outcome", outcome))
    await staff_reply(core, HANDLER, await prompt(core, f"cw_p_{outcome}"), text)


async def answer_follow_up(core: Core, clock: FrozenClock, *, satisfied: bool) -> None:
    """The post-complaint follow-up, sent when due and answered by the merchant."""
    due = [f for f in await complaint_followups(core) if f.status == "scheduled"]
    assert len(due) == 1
    clock.set(due[0].send_at)
    await dispatch_due(core)
    await merchant_taps(core, "▶️ Start")
    if satisfied:
        await merchant_taps(core, "Yes")
    else:
        await merchant_taps(core, "No")
        await merchant_types(core, "the refund never arrived")
    await merchant_taps(core, "4★")
    await merchant_taps(core, "4★")
    await merchant_taps(core, "Skip")
    await merchant_taps(core, "✅ Submit")


def last_to(core: Core, chat: int) -> dict[str, Any]:
    return next(p for c, p in reversed(messenger(core).sent) if c == chat)


async def test_a_complaint_is_worked_until_the_merchant_is_satisfied(core: Core, clock: FrozenClock) -> None:
    ticket_id = await open_complaint(core, await people(core))
    case_message = len(messenger(core).sent)  # the case message's id with the recording messenger
    case = messenger(core).texts(STAFF_CHAT)[-1]
    assert "138****5678" in case
    labels = [label for label, _, _ in buttons_to(core, STAFF_CHAT)]
    assert {"❓ 询问商户", "📅 设定预计完成日期", "⚠️ 标为严重"} <= set(labels) and "💡 提出解决方案" not in labels
    await press(core, HANDLER, CaseButton(ticket_id, "take"))
    assert "💡 提出解决方案" in [label for label, _, _ in buttons_to(core, STAFF_CHAT)]

    # Ask the merchant: relayed literally in their language; their next message comes back under the case.
    assert await press(core, HANDLER, ComplaintWork(ticket_id, "ask")) == "请回复下方的问题。"
    await staff_reply(core, HANDLER, await prompt(core, "cw_ask"), "Which day was it? <b>date</b> please")
    asked = messenger(core).texts(SHOP)[-1]
    assert "our team asks" in asked and "Which day was it? <b>date</b> please" in asked
    assert (await the_ticket(core, ticket_id)).question == "Which day was it? <b>date</b> please"
    await merchant_types(core, "Monday noon, his number is 13912345678")
    relayed = last_to(core, STAFF_CHAT)
    assert "Monday noon, his number is 139****5678" in relayed["text"]
    assert relayed["reply_to_message_id"] == case_message
    assert "passed to the team" in messenger(core).texts(SHOP)[-1]
    answered = await the_ticket(core, ticket_id)
    assert answered.question is None and answered.question_asked_at is not None

    # A first solution, rejected: still open, the case posted again with the supervisor mentioned.
    await propose(core, ticket_id, "apology", "Our engineer will apologise in person on Friday.")
    first = [b for b in buttons_to(core, SHOP) if b[0] == "✅ Accept"][-1]
    assert "Our engineer will apologise in person on Friday." in messenger(core).texts(SHOP)[-1]
    await merchant_taps(core, "❌ Reject")
    rejected = await the_ticket(core, ticket_id)
    assert (rejected.status, rejected.proposal) == ("taken", None)
    assert "supervisor will look into it" in messenger(core).texts(SHOP)[-1]
    escalated = last_to(core, STAFF_CHAT)
    assert "Zhao Zhuguan" in escalated["text"] and "商户不接受解决方案" in escalated["text"]
    assert escalated["entities"][0]["user"]["id"] == SUPERVISOR
    assert "edit_message_id" not in escalated  # posted anew, at the bottom of the group

    # The old proposal's Accept is stale now.
    assert await merchant_presses(core, first[1]) == STALE
    assert (await the_ticket(core, ticket_id)).status == "taken"

    # A new solution, accepted: resolved with the agreed outcome; the merchant is the actor.
    await propose(core, ticket_id, "refund", "We refund the installation fee of 200 yuan.")
    await merchant_taps(core, "✅ Accept")
    accepted = await the_ticket(core, ticket_id)
    assert (accepted.status, accepted.agreed_outcome, accepted.resolution_method) == ("resolved", "refund", "remote")
    assert accepted.assignee_id is not None
    resolved = [e for e in await events(core, ticket_id) if e.action == "resolved"]
    assert [(e.actor, e.detail["agreed_outcome"]) for e in resolved] == [(f"merchant:{SHOP}", "refund")]
    assert "商户已接受解决方案（退款或赔偿）" in last_to(core, STAFF_CHAT)["text"]

    # Closed: one post-complaint follow-up for this resolution, not two.
    await press(core, HANDLER, CaseButton(ticket_id, "close"))
    assert (await the_ticket(core, ticket_id)).status == "closed"
    assert len(await complaint_followups(core)) == 1

    # "Not satisfied": reopened, count 1, same handler, posted again without calling the supervisors.
    await answer_follow_up(core, clock, satisfied=False)
    reopened = await the_ticket(core, ticket_id)
    assert (reopened.status, reopened.reopen_count, reopened.assignee_id) == ("reopened", 1, accepted.assignee_id)
    reason = [e.detail["reason"] for e in await events(core, ticket_id) if e.action == "reopened"]
    assert reason == ["the refund never arrived"]
    assert "entities" not in next(
        p for c, p in reversed(messenger(core).sent) if c == STAFF_CHAT and p.get("reply_markup")
    )

    # Handled again and closed: its own follow-up, answered "satisfied"; the case stays closed.
    await press(core, HANDLER, CaseButton(ticket_id, "resolve_remote"))
    await press(core, HANDLER, CaseButton(ticket_id, "close"))
    assert len(await complaint_followups(core)) == 2
    await answer_follow_up(core, clock, satisfied=True)
    final = await the_ticket(core, ticket_id)
    assert (final.status, final.reopen_count, final.agreed_outcome) == ("closed", 1, "refund")
    actions = [e.action for e in await events(core, ticket_id)]
    for expected in ("question_asked", "merchant_answered", "solution_proposed", "proposal_rejected", "reopened"):
        assert expected in actions


async def test_the_second_reopening_calls_the_supervisors_and_keeps_the_handler(core: Core) -> None:
    ticket_id = await open_complaint(core, await people(core))
    await press(core, HANDLER, CaseButton(ticket_id, "take"))
    for round_ in (1, 2):
        await press(core, HANDLER, CaseButton(ticket_id, "resolve_remote"))

        async def reopen(done: UpdateWork) -> None:
            ticket = await done.session.get(Ticket, ticket_id)
            assert ticket is not None
            await core.cases.reopen(done, ticket, actor=f"merchant:{SHOP}", detail={"reason": "still rude"})

        await core.cases.updates.run(next(_update_ids), reopen)
        await core.outbox.deliver()
        posted = next(p for c, p in reversed(messenger(core).sent) if c == STAFF_CHAT and p.get("reply_markup"))
        if round_ == 1:
            assert "entities" not in posted and "Zhao Zhuguan" not in posted["text"]
    assert "再次被重新打开（共 2 次）" in posted["text"] and "Li Na" in posted["text"]
    assert [e["user"]["id"] for e in posted["entities"]] == [SUPERVISOR]
    again = await the_ticket(core, ticket_id)
    assert again.reopen_count == 2
    assert await press(core, HANDLER, CaseButton(ticket_id, "take")) is not None
    assert (await the_ticket(core, ticket_id)).status == "taken"


async def test_mark_serious_calls_the_supervisors_at_once_and_the_button_goes(core: Core) -> None:
    ticket_id = await open_complaint(core, await people(core))
    # Nobody has it yet: no solution can be proposed (accepting it would resolve an untaken case).
    assert "等待受理" in (await press(core, HANDLER, ComplaintWork(ticket_id, "propose")) or "")
    await press(core, HANDLER, ComplaintWork(ticket_id, "serious"))
    assert (await the_ticket(core, ticket_id)).serious
    posted = last_to(core, STAFF_CHAT)
    assert "已被 Li Na 标为严重投诉" in posted["text"] and "⚠️ 严重：已通知主管" in posted["text"]
    assert [e["user"]["id"] for e in posted["entities"]] == [SUPERVISOR]
    assert "⚠️ 标为严重" not in [b["text"] for row in posted["reply_markup"]["inline_keyboard"] for b in row]
    assert "已经标为严重投诉" in (await press(core, HANDLER, ComplaintWork(ticket_id, "serious")) or "")
    async with core.sessions() as session:
        marked = (await session.execute(select(TicketEvent).where(TicketEvent.action == "marked_serious"))).all()
    assert len(marked) == 1


async def test_an_expected_date_is_set_and_the_merchant_told(core: Core) -> None:
    ticket_id = await open_complaint(core, await people(core))
    await press(core, HANDLER, ComplaintWork(ticket_id, "expect"))
    await staff_reply(core, HANDLER, await prompt(core, "cw_date"), "02-30")
    assert "不是今天或以后的日期" in last_to(core, STAFF_CHAT)["text"]
    assert (await the_ticket(core, ticket_id)).expected_at is None
    await staff_reply(core, HANDLER, await prompt(core, "cw_date"), "12-04")
    ticket = await the_ticket(core, ticket_id)
    assert ticket.expected_at is not None and ticket.expected_at.astimezone(SHANGHAI).date().isoformat() == "2026-12-04"
    assert "handled by 2026-12-04" in messenger(core).texts(SHOP)[-1]
    assert "expected_date_set" in [e.action for e in await events(core, ticket_id)]


async def test_forged_and_stale_presses_change_nothing(core: Core) -> None:
    ticket_id = await open_complaint(core, await people(core))
    await press(core, HANDLER, CaseButton(ticket_id, "take"))

    # Not staff: refused and audited.
    assert await press(core, STRANGER, ComplaintWork(ticket_id, "serious")) == "Only staff can do this."
    assert not (await the_ticket(core, ticket_id)).serious
    async with core.sessions() as session:
        refused = (await session.execute(select(StaffAudit).where(StaffAudit.telegram_user_id == STRANGER))).scalars()
        assert [r.subject for r in refused] == ["button:cw"]

    await propose(core, ticket_id, "explanation", "The fee is the bank's, here is the contract clause.")
    accept = next(b for b in reversed(buttons_to(core, SHOP)) if b[0] == "✅ Accept")[1]
    data = unpack(accept)
    assert isinstance(data, ComplaintAnswer)
    # Another merchant, a forged proposal id, a ticket that does not exist: stale, nothing changes.
    assert await merchant_presses(core, accept, user=OTHER_SHOP) == STALE
    forged = ComplaintAnswer(ticket_id, data.proposal + 1, "accept").pack()
    assert await merchant_presses(core, forged) == STALE
    assert await merchant_presses(core, ComplaintAnswer(9999, data.proposal, "accept").pack()) is not None
    unchanged = await the_ticket(core, ticket_id)
    assert (unchanged.status, unchanged.agreed_outcome) == ("taken", None)
    assert unchanged.proposal is not None

    # Pressed twice: the second press is stale.
    await merchant_presses(core, accept)
    assert (await the_ticket(core, ticket_id)).status == "resolved"
    assert await merchant_presses(core, accept) == STALE
    assert len([e for e in await events(core, ticket_id) if e.action == "resolved"]) == 1

    # A closed complaint's tools no longer apply; a staff reply to an old prompt changes nothing either.
    assert "已解决" in (await press(core, HANDLER, ComplaintWork(ticket_id, "ask")) or "")
    await staff_reply(core, HANDLER, await prompt(core, "cw_p_explanation"), "a late second thought")
    assert (await the_ticket(core, ticket_id)).proposal == "The fee is the bank's, here is the contract clause."


async def test_text_without_a_waiting_question_is_not_taken_as_an_answer(core: Core) -> None:
    ticket_id = await open_complaint(core, await people(core))
    await merchant_types(core, "hello?")
    assert "merchant_answered" not in [e.action for e in await events(core, ticket_id)]
    assert not any("商户已回答" in text for text in messenger(core).texts(STAFF_CHAT))


# ---- end to end: the real bot and the fake Bot API server ----------------------------------------------


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[HANDLER, SUPERVISOR])
        yield server


async def test_a_question_and_an_accepted_solution_through_telegram(api: FakeBotAPI, sqlite_url: str) -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI))
    async with running_bot(api, telegram_settings(sqlite_url, api), clock) as running:
        core = running.core
        ticket_id = await open_complaint(core, await people(core))
        merchant = Chat(api, SHOP)

        def group() -> list[Any]:
            return api.sent(STAFF_CHAT)

        async def staff_press(label: str, then: Any) -> None:
            message, data = next((m, d) for m in reversed(group()) for text, d in api.buttons(m) if text == label)
            answers = len(api.callback_answers)
            api.member_presses(STAFF_CHAT, HANDLER, message, data)
            await api.wait_for(lambda: len(api.callback_answers) > answers and then(), timeout=STEP_TIMEOUT)

        async def staff_replies(text: str, then: Any) -> None:
            api.member_sends_text(STAFF_CHAT, HANDLER, text, reply_to=group()[-1])
            await api.wait_for(then, timeout=STEP_TIMEOUT)

        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)
        await staff_press("🙋 接单", then=lambda: any("Li Na" in str(m.text) for m in api.sent(SHOP)))
        await staff_press(
            "❓ 询问商户", then=lambda: "询问" in str(group()[-1].text) or "问题" in str(group()[-1].text)
        )
        await staff_replies(
            "Was it the engineer Wang? *yes/no*", then=lambda: "*yes/no*" in str(api.sent(SHOP)[-1].text)
        )
        await merchant.type("Yes, Wang, on Monday")
        await api.wait_for(lambda: any("Yes, Wang, on Monday" in str(m.text) for m in group()), timeout=STEP_TIMEOUT)
        assert "passed to the team" in merchant.last_text

        await staff_press("💡 提出解决方案", then=lambda: "哪类解决方案" in str(group()[-1].text))
        await staff_press("道歉", then=lambda: "请回复本消息" in str(group()[-1].text))
        await staff_replies(
            "Wang will call you to apologise today.", then=lambda: ("✅ Accept", ANY) in api.buttons(api.sent(SHOP)[-1])
        )
        await merchant.press("✅ Accept")
        # The proposal's message becomes the answer given, its buttons gone.
        await api.wait_for(
            lambda: any("You accepted the proposal" in str(m.text) and not api.buttons(m) for m in api.sent(SHOP)),
            timeout=STEP_TIMEOUT,
        )
        await api.wait_for(lambda: any("商户已接受解决方案" in str(m.text) for m in group()), timeout=STEP_TIMEOUT)
    ticket = await the_ticket(core, ticket_id)
    assert (ticket.status, ticket.agreed_outcome) == ("resolved", "apology")
