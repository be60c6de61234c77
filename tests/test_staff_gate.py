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
