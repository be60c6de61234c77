"""Forged presses, a second shop's invite code, and `/language en`, through the service on a real database."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Core
from bot.services.merchants import add_merchant
from bot.storage.models import Conversation, OutboxMessage
from bot.storage.models import Merchant as MerchantRow
from tests.test_service_storage import USER, Merchant, count, registered


async def _snapshot(core: Core) -> tuple[object, int]:
    async with core.sessions() as session:
        conversation = await session.get(Conversation, USER)
        state = conversation.state if conversation else None
    return state, await count(core, OutboxMessage)


async def test_a_forged_press_is_told_the_button_is_no_longer_valid_and_changes_nothing(core: Core) -> None:
    await registered(core)
    m = Merchant(core)
    await m.command("/repair")
    before = await _snapshot(core)
    for forged in ("d:²:_skip", "fu:١:start", "fu:99999999999:start", "zz:1", "d:1:" + "x" * 70, "st:1:reached", ""):
        outcome = await m.send("button", data=forged)
        assert outcome.callback_text in ("This button is no longer valid.", "This question is closed.")
        assert outcome.outbox_ids == []
    assert await _snapshot(core) == before


async def test_a_follow_up_button_for_someone_elses_follow_up_is_stale(core: Core) -> None:
    await registered(core)
    outcome = await Merchant(core).send("button", data="fu:123456:start")
    assert outcome.callback_text == "This question is closed."
    assert outcome.outbox_ids == []


async def test_a_linked_merchant_with_a_second_shops_code_is_asked_before_the_chat_moves(core: Core) -> None:
    await registered(core)
    async with core.sessions() as session, session.begin():
        await add_merchant(session, name="Happy Tea", phone=None, now=core.clock.now(), invite_code="tea2345678")
    m = Merchant(core)
    await m.command("/start tea2345678")
    assert m.last()["text"] == (
        "This chat is linked to Lucky Noodles. Link it to Happy Tea instead? Reports already made stay with their shop."
    )
    await m.press("Keep Lucky Noodles")
    assert m.last()["text"] == "Nothing changed: this chat stays linked to Lucky Noodles."
    await m.command("/start tea2345678")
    await m.press("Link to Happy Tea")
    assert m.last()["text"] == "Thank you, Happy Tea. Your shop is now linked to this chat."
    async with core.sessions() as session:
        links = dict((await session.execute(select(MerchantRow.name, MerchantRow.telegram_user_id))).all())
        conversation = await session.get(Conversation, USER)
        tea = (await session.execute(select(MerchantRow.id).where(MerchantRow.name == "Happy Tea"))).scalar_one()
    assert links == {"Lucky Noodles": None, "Happy Tea": USER}
    assert conversation is not None and conversation.merchant_id == tea


async def test_language_with_an_argument_switches_at_once(core: Core) -> None:
    m = Merchant(core, language="zh-hans")
    await m.command("/language en")
    assert m.last()["text"] == "Language set to English."
    await m.command("/language 中文")
    assert m.last()["text"] == "已切换为中文。"
    await m.command("/language klingon")
    texts = [p["text"] for c, p in m.messenger.sent if c == USER][-2:]
    assert texts == ["无法识别语言“klingon”。", "请选择语言："]
    async with core.sessions() as session:
        conversation = await session.get(Conversation, USER)
    assert conversation is not None and conversation.locale == "zh_CN" and conversation.locale_chosen


def test_the_terminal_takes_a_button_number_but_not_a_superscript() -> None:
    from io import StringIO

    from bot.channels.terminal import TerminalMessenger

    terminal = TerminalMessenger(user_chat_id=1, out=StringIO())
    terminal.buttons = [("Yes", "d:1:yes"), ("No", "d:1:no")]
    assert terminal.button_for("2") == "d:1:no"
    assert terminal.button_for("２") == "d:1:no"  # a Chinese keyboard's full-width digit
    assert terminal.button_for("²") is None
    assert terminal.button_for("3") is None
