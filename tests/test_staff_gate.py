"""Every staff command and every staff button, tried by someone who is not staff: refused, nothing changes.

The lists come from the registry, so a capability added later is covered without editing this file.
"""

from __future__ import annotations

from dataclasses import fields
from itertools import product
from typing import Any, Literal, get_args, get_origin, get_type_hints

from sqlalchemy import select, text

from bot.app import Core
from bot.delivery.callbacks import CallbackData
from bot.services.turn import StaffAction
from bot.storage.models import StaffAudit
from tests.conftest import STAFF_CHAT, add_staff, linked_merchant
from tests.test_case_desk import open_repair

STRANGER = 700099  # in the staff group, but nobody made them staff
ARGS = ("", "list", "add 700099 supervisor", "remove 700001", "R-2026-000001", "1", "AB123456 !screen", "13812345678")
TABLES = ("merchants", "terminals", "staff", "tickets", "ticket_events", "followups", "submissions", "answers")


def every_instance(kind: type[CallbackData]) -> list[CallbackData]:
    """Each button of this kind that could name the case, follow-up or person the test made (ids 1 and 2)."""
    hints = get_type_hints(kind)
    choices: list[tuple[Any, ...]] = []
    for field in fields(kind):  # type: ignore[arg-type]
        hint = hints[field.name]
        if get_origin(hint) is Literal:
            choices.append(get_args(hint))
        elif hint is int:
            choices.append((1, 2))
        else:
            choices.append(("x",))
    return [kind(*values) for values in product(*choices)]


async def snapshot(core: Core) -> dict[str, list[tuple[Any, ...]]]:
    async with core.sessions() as session:
        return {
            table: [tuple(r) for r in (await session.execute(text(f"select * from {table} order by 1"))).all()]
            for table in TABLES
        }


async def test_a_group_member_who_is_not_staff_is_refused_every_command_and_button(core: Core) -> None:
    await add_staff(core, 700001, "aftersales", "Wang Gong")
    await open_repair(core)
    await linked_merchant(core, 515152, name="Second Shop", phone="13912345678")
    before = await snapshot(core)
    update_ids = iter(range(50_000, 60_000))
    tried = 0
    for name, handler in core.registry.staff_commands.items():
        for args in ARGS:
            action = StaffAction(next(update_ids), STAFF_CHAT, STRANGER, "Stranger", None, "en")
            outcome = await handler(action, args)
            tried += 1
            assert outcome.callback_text is None, name
    presses = 0
    for kind, handler in core.registry.staff_buttons.items():
        for data in every_instance(kind):
            action = StaffAction(next(update_ids), STAFF_CHAT, STRANGER, "Stranger", 1, "en")
            outcome = await handler(action, data)
            presses += 1
            assert (outcome.callback_text, outcome.alert) == ("Only staff can do this.", True), data
    await core.outbox.deliver()
    assert await snapshot(core) == before
    refusals = [
        t
        for c, p in core.outbox.messenger.sent
        if c == STAFF_CHAT
        for t in [p["text"]]
        if t == "Only staff can do this."
    ]  # type: ignore[attr-defined]
    assert len(refusals) == tried
    async with core.sessions() as session:
        audited = (
            (await session.execute(select(StaffAudit).where(StaffAudit.telegram_user_id == STRANGER))).scalars().all()
        )
    assert len(audited) == tried + presses
    assert {a.action for a in audited} == {"refused"}
    # Every kind and command was really tried.
    assert {a.subject.split(":")[0] for a in audited} == {"command", "button"}
    assert len({a.subject for a in audited if a.subject.startswith("button:")}) == len(core.registry.staff_buttons)


async def test_through_telegram_a_group_member_who_is_not_staff_changes_nothing(sqlite_url: str) -> None:
    """The same, end to end: the real bot polls the fake Bot API; the member types every staff command in the
    staff group and presses every staff button kind (data as a modified client would send it) on the case."""
    from tests.fakes import FakeBotAPI
    from tests.telegram_harness import STEP_TIMEOUT, TOKEN, running_bot, telegram_settings

    async with FakeBotAPI(token=TOKEN) as api:
        api.add_group(STAFF_CHAT, title="Staff", members=[700001, STRANGER])
        async with running_bot(api, telegram_settings(sqlite_url, api)) as running:
            core = running.core
            await add_staff(core, 700001, "aftersales", "Wang Gong")
            await linked_merchant(
                core, 515151, name="Lucky Noodles", phone="13812345678", terminals=[("AB123456", "P300")]
            )
            api.member_sends_text(STAFF_CHAT, 700001, "/newticket AB123456 !screen stays black")
            await api.wait_for(lambda: any("R-" in str(m.text) for m in api.sent(STAFF_CHAT)), timeout=STEP_TIMEOUT)
            case = next(m for m in api.sent(STAFF_CHAT) if "R-" in str(m.text) and api.buttons(m))
            before = await snapshot(core)
            commands = sorted(core.registry.staff_commands)
            for name in commands:
                said = len(api.sent(STAFF_CHAT))
                api.member_sends_text(STAFF_CHAT, STRANGER, f"/{name} R-2026-000001 13812345678")
                await api.wait_for(lambda n=said: len(api.sent(STAFF_CHAT)) > n, timeout=STEP_TIMEOUT)  # type: ignore[misc]
                assert api.sent(STAFF_CHAT)[-1].text == "仅限员工操作。", name
            presses = [data for kind in core.registry.staff_buttons for data in every_instance(kind)]
            for data in presses:
                answered = len(api.callback_answers)
                api.user_presses(STRANGER, case, data.pack(), chat_id=STAFF_CHAT, forged=True)
                await api.wait_for(lambda n=answered: len(api.callback_answers) > n, timeout=STEP_TIMEOUT)  # type: ignore[misc]
                answer = api.callback_answers[-1]
                assert (answer.get("text"), answer.get("show_alert")) == ("仅限员工操作。", True), data
            assert await snapshot(core) == before
            async with core.sessions() as session:
                refused = (
                    (await session.execute(select(StaffAudit).where(StaffAudit.telegram_user_id == STRANGER)))
                    .scalars()
                    .all()
                )
            assert len(refused) == len(commands) + len(presses)
