"""Enquiries end to end: free text outside a dialogue reaches the service team when the merchant says so,
and staff answer it by replying to the case in the group.

The merchant speaks English; the staff group reads the default language, zh_CN.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Core
from bot.clock import FrozenClock
from bot.storage.models import Answer, ProcessedUpdate, Staff, Submission, Ticket, TicketEvent
from tests.conftest import SHANGHAI, STAFF_CHAT, add_staff, linked_merchant
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings

SERVICE = 900021  # customer service, in the group and staff
BYSTANDER = 900022  # in the group, but nobody made them staff
SHOP = 646464


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[SERVICE, BYSTANDER])
        yield server


@pytest.fixture
def tuesday_morning() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))


async def shop(core: Core) -> int:
    await add_staff(core, SERVICE, "service", "Chen Kefu")
    return await linked_merchant(core, SHOP, name="Golden Dumplings", phone="13812345678")


async def until_handled(core: Core, update: dict[str, Any]) -> None:
    """Until the bot has finished with `update` (its id is recorded with whatever it changed)."""

    async def recorded() -> bool:
        async with core.sessions() as session:
            return await session.get(ProcessedUpdate, update["update_id"]) is not None

    async with asyncio.timeout(STEP_TIMEOUT):
        while not await recorded():  # noqa: ASYNC110 - the database offers no event to wait on
            await asyncio.sleep(0.02)


def formatted(message: Any) -> list[Any]:
    """Bold, italic and the like: what markup would have become had it been parsed."""
    return [e for e in message.entities if e["type"] in ("bold", "italic", "code", "pre", "text_link")]


async def rows(core: Core, model: Any) -> int:
    async with core.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_free_text_becomes_an_enquiry_that_staff_answer_by_replying_in_the_group(
    api: FakeBotAPI, sqlite_url: str, tuesday_morning: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), tuesday_morning) as running:
        core = running.core
        await shop(core)
        merchant = Chat(api, SHOP)

        # Two messages, one question: the second joins the first.
        await merchant.type("Can I get a second terminal? <b>urgent</b>")
        assert merchant.last_text.startswith("Send this to our service team?")
        assert [t for t, _ in api.buttons(merchant.seen()[-1])] == ["✅ Yes, send it", "✖️ No"]
        await merchant.type("Call me on 13812345678 after *3pm*")
        assert merchant.last_text.startswith("Send these 2 messages to our service team?")
        await merchant.press("✅ Yes, send it")
        assert "enquiry Q-2026-" in merchant.last_text
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)

        # The case in the group: the merchant's words as typed (no markup parsed), the number masked.
        case = api.sent(STAFF_CHAT)[0]
        text = str(case.text)
        assert text.startswith("💬 咨询 Q-2026-") and "客服" in text and "Golden Dumplings" in text
        assert "Can I get a second terminal? <b>urgent</b>\nCall me on 138****5678 after *3pm*" in text
        assert "parse_mode" not in case.params and not formatted(case)
        assert "📞 联系商户" in [t for t, _ in api.buttons(case)]

        # Someone in the group who is not staff replies: nothing reaches the merchant, nothing is recorded.
        seen = len(merchant.seen())
        chatter = api.member_sends_text(STAFF_CHAT, BYSTANDER, "I can sell you one cheaper", reply_to=case)
        await until_handled(core, chatter)

        # Customer service replies: the merchant gets the answer, marked, with the case number, as typed.
        api.member_sends_text(STAFF_CHAT, SERVICE, "Yes: <i>P300</i>, 199 yuan. We will call at 3pm.", reply_to=case)
        await api.wait_for(lambda: len(merchant.seen()) > seen, timeout=STEP_TIMEOUT)
        assert len(merchant.seen()) == seen + 1  # the staff member's answer, and nothing from the bystander
        answer = merchant.seen()[-1]
        assert str(answer.text).startswith("💬 Our service team answers (Q-2026-")
        assert str(answer.text).endswith("\nYes: <i>P300</i>, 199 yuan. We will call at 3pm.")
        assert "parse_mode" not in answer.params and not formatted(answer)
        await api.wait_for(lambda: "已转告商户" in str(api.sent(STAFF_CHAT)[-1].text), timeout=STEP_TIMEOUT)
        await api.wait_for(lambda: "Chen Kefu" in str(case.text), timeout=STEP_TIMEOUT)  # taken by the replier

    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        trail = list(
            (
                await session.execute(
                    select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
                )
            ).scalars()
        )
        handler = await session.get(Staff, ticket.assignee_id)
        draft = await session.get(Submission, ticket.submission_id)
    assert (ticket.kind, ticket.role, ticket.status) == ("enquiry", "service", "taken")
    assert ticket.description == "Can I get a second terminal? <b>urgent</b>\nCall me on 13812345678 after *3pm*"
    assert ticket.first_response_at == tuesday_morning.now()
    assert handler is not None and handler.telegram_user_id == SERVICE
    assert [(e.action, e.actor) for e in trail] == [
        ("created", f"merchant:{SHOP}"),
        ("take", f"staff:{SERVICE}"),
        ("answered", f"staff:{SERVICE}"),
    ]
    assert trail[-1].detail["staff"] == SERVICE and "199 yuan" in trail[-1].detail["text"]
    assert draft is not None and draft.status == "submitted"  # the merchant's messages, kept as given


async def test_no_keeps_nothing_but_the_answer_ok(
    api: FakeBotAPI, sqlite_url: str, tuesday_morning: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), tuesday_morning) as running:
        core = running.core
        await shop(core)
        merchant = Chat(api, SHOP)
        await merchant.type("thanks, all good now")
        assert merchant.last_text.startswith("Send this to our service team?")
        await merchant.press("✖️ No")
        assert merchant.last_text == "OK."

        # The offer's button is spent: pressing Yes on it now changes nothing.
        answers = len(api.callback_answers)
        await merchant.press("✅ Yes, send it", count=0)
        await api.wait_for(lambda: len(api.callback_answers) > answers, timeout=STEP_TIMEOUT)
        assert api.callback_answers[-1].get("text") == "This question is closed."
    assert api.sent(STAFF_CHAT) == []
    assert (await rows(core, Ticket), await rows(core, Submission), await rows(core, Answer)) == (0, 0, 0)


async def test_a_reply_to_a_repair_case_stays_a_note_and_is_not_relayed(
    api: FakeBotAPI, sqlite_url: str, tuesday_morning: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), tuesday_morning) as running:
        core = running.core
        await shop(core)
        merchant = Chat(api, SHOP)
        await merchant.type("/repair")
        await merchant.type("AB123456")
        await merchant.press("Printing")
        await merchant.press("Yes")
        await merchant.type("prints blank receipts")
        await merchant.press("Skip")
        await merchant.press("Yes")  # the tips fixed it
        await merchant.press("✅ Submit")
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)
        seen = len(merchant.seen())
        api.member_sends_text(STAFF_CHAT, SERVICE, "paper roll was upside down", reply_to=api.sent(STAFF_CHAT)[0])
        await api.wait_for_messages(STAFF_CHAT, 2, timeout=STEP_TIMEOUT)
        assert "备注" in str(api.sent(STAFF_CHAT)[-1].text)
    assert len(merchant.seen()) == seen
    async with core.sessions() as session:
        actions = list((await session.execute(select(TicketEvent.action).order_by(TicketEvent.id))).scalars())
    assert actions[-1] == "note" and "answered" not in actions


async def test_a_flood_of_texts_keeps_the_first_twenty_and_the_offer_stands(core: Core) -> None:
    """Hostile or stuck clients: the draft stops growing, every text is still answered, nothing else changes."""
    from bot.services.enquiries import DRAFT_MAX
    from bot.services.turn import Incoming

    await linked_merchant(core, 626262, name="Noisy Shop", phone=None)
    for n in range(DRAFT_MAX + 5):
        await core.service.handle(Incoming(626262, 626262, "text", 90_000 + n, "en", text=f"hello {n}"))
    await core.outbox.deliver()
    async with core.sessions() as session:
        kept = (await session.execute(select(Answer.value).order_by(Answer.id))).scalars().all()
        tickets = (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
    assert kept == [f"hello {n}" for n in range(DRAFT_MAX)] and tickets == 0
    sent = core.outbox.messenger.texts(626262)  # type: ignore[attr-defined]
    assert len(sent) == DRAFT_MAX + 5 and f"{DRAFT_MAX}" in sent[-1]
