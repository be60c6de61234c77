"""The SLA watcher on a hand-moved clock: warned at 80 % of the working time, supervisors called on breach."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.app import Core
from bot.clock import FrozenClock
from bot.delivery.callbacks import CaseButton
from bot.scheduling.sla import SlaReport, SlaWatcher
from tests.conftest import SHANGHAI, STAFF_CHAT, add_staff
from tests.test_case_desk import ENGINEER, SUPERVISOR, messenger, open_repair, press, ticket


async def watch(core: Core) -> SlaReport:
    report = await SlaWatcher(core.cases).tick()
    await core.outbox.deliver()
    return report


def group(core: Core) -> list[dict[str, Any]]:
    return [payload for chat, payload in messenger(core).sent if chat == STAFF_CHAT]


def mentioned(payload: dict[str, Any]) -> list[tuple[str, int]]:
    """The names Telegram would highlight, cut out of the text by the entities' UTF-16 offsets."""
    units = payload["text"].encode("utf-16-le")
    return [
        (units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le"), e["user"]["id"])
        for e in payload.get("entities", [])
        if e["type"] == "text_mention"
    ]


async def test_an_untaken_urgent_case_is_warned_at_80_percent_then_posted_again_mentioning_supervisors(
    core: Core, clock: FrozenClock
) -> None:
    await add_staff(core, SUPERVISOR, "supervisor", "李主管")
    await add_staff(core, SUPERVISOR + 1, "supervisor", "Zhang Wei")
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)  # Tuesday 10:00: respond by 10:30, resolve by 18:00
    posted = len(group(core))

    clock.set(datetime(2026, 11, 24, 10, 23, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport()
    clock.set(datetime(2026, 11, 24, 10, 24, tzinfo=SHANGHAI))  # 24 of the 30 minutes
    assert await watch(core) == SlaReport(warned=1)
    warning = group(core)[-1]["text"]
    assert "R-2026-" in warning and "须在 2026-11-24 10:30 前首次响应" in warning  # the group's language
    assert (await ticket(core, ticket_id)).respond_warned_at is not None

    clock.set(datetime(2026, 11, 24, 10, 30, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport(breached=1)
    breach = group(core)[-1]
    assert "edit_message_id" not in breach  # posted anew, under everything since
    assert "🚨" in breach["text"] and "AB123456" in breach["text"] and "138****5678" in breach["text"]
    assert mentioned(breach) == [("Zhang Wei", SUPERVISOR + 1), ("李主管", SUPERVISOR)]
    assert all(e["user"]["is_bot"] is False for e in breach["entities"])
    stamped = await ticket(core, ticket_id)
    assert stamped.respond_breached_at is not None and stamped.resolve_warned_at is None
    assert len(group(core)) == posted + 2

    # The case message now is the new one: a press edits it, not the one the breach buried.
    await press(core, ENGINEER, CaseButton(ticket_id, "take"))
    assert group(core)[-1].get("edit_message_id") == messenger(core).sent.index((STAFF_CHAT, breach)) + 1


async def test_running_the_watcher_twice_or_after_a_restart_says_nothing_twice(core: Core, clock: FrozenClock) -> None:
    await add_staff(core, SUPERVISOR, "supervisor", "李主管")
    await open_repair(core)
    clock.set(datetime(2026, 11, 24, 10, 25, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport(warned=1)
    assert await watch(core) == SlaReport()
    assert await SlaWatcher(core.cases).tick() == SlaReport()  # a new watcher reads the stamps
    clock.set(datetime(2026, 11, 24, 11, 0, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport(breached=1)
    assert await watch(core) == SlaReport()
    texts = [p["text"] for p in group(core)]
    assert sum("⏳" in t for t in texts) == 1 and sum("🚨" in t for t in texts) == 1


async def test_a_case_opened_at_1750_on_a_friday_is_quiet_all_weekend(core: Core, clock: FrozenClock) -> None:
    await add_staff(core, SUPERVISOR, "supervisor", "李主管")
    clock.set(datetime(2026, 11, 27, 17, 50, tzinfo=SHANGHAI))  # Friday: 10 working minutes left today
    ticket_id = await open_repair(core)
    opened = await ticket(core, ticket_id)
    assert opened.respond_due_at == datetime(2026, 11, 30, 9, 20, tzinfo=SHANGHAI)
    posted = len(group(core))

    while clock.now() + timedelta(minutes=37) < datetime(2026, 11, 30, 9, 14, tzinfo=SHANGHAI):
        clock.advance(timedelta(minutes=37))  # the night, Saturday, Sunday, Monday's first minutes
        assert await watch(core) == SlaReport()
    assert len(group(core)) == posted

    clock.set(datetime(2026, 11, 30, 9, 14, tzinfo=SHANGHAI))  # Monday: 10 + 14 of the 30 working minutes
    assert await watch(core) == SlaReport(warned=1)
    clock.set(datetime(2026, 11, 30, 9, 20, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport(breached=1)


async def test_a_taken_case_gets_no_response_warning_only_its_resolution_one(core: Core, clock: FrozenClock) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)
    clock.advance(timedelta(minutes=5))
    await press(core, ENGINEER, CaseButton(ticket_id, "take"))
    posted = len(group(core))
    for minute in (24, 30, 60, 6 * 60 + 23):
        clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI) + timedelta(minutes=minute))
        assert await watch(core) == SlaReport()
    assert len(group(core)) == posted

    clock.set(datetime(2026, 11, 24, 16, 24, tzinfo=SHANGHAI))  # 80 % of the working day to 18:00
    assert await watch(core) == SlaReport(warned=1)
    assert "18:00" in group(core)[-1]["text"]
    assert (await ticket(core, ticket_id)).respond_warned_at is None


async def test_a_breach_with_no_supervisor_on_the_list_mentions_nobody(core: Core, clock: FrozenClock) -> None:
    await open_repair(core)
    clock.set(datetime(2026, 11, 24, 10, 31, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport(breached=1)
    breach = group(core)[-1]
    assert "🚨" in breach["text"] and "entities" not in breach


async def test_an_unanswered_complaint_is_warned_then_breached_on_working_time_only(
    core: Core, clock: FrozenClock
) -> None:
    """Filed on Friday at 16:00: 240 working minutes to a first answer are Friday's last two hours and Monday's
    first two, so the warning (at 192 minutes) comes on Monday at 10:12 and the breach at 11:00."""
    from tests.conftest import linked_merchant
    from tests.test_complaint_desk import SHOP, open_complaint

    await add_staff(core, SUPERVISOR, "supervisor", "李主管")
    clock.set(datetime(2026, 11, 27, 16, 0, tzinfo=SHANGHAI))
    ticket_id = await open_complaint(core, await linked_merchant(core, SHOP, name="Lucky Noodles", phone=None))
    opened = await ticket(core, ticket_id)
    assert opened.number is not None and opened.number.startswith("C-")
    for quiet in ((11, 27, 17, 59), (11, 28, 12, 0), (11, 29, 23, 0), (11, 30, 10, 11)):
        clock.set(datetime(2026, *quiet, tzinfo=SHANGHAI))
        assert await watch(core) == SlaReport(), quiet  # Friday evening, the weekend, Monday morning
    clock.set(datetime(2026, 11, 30, 10, 12, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport(warned=1)
    assert opened.number in group(core)[-1]["text"]
    clock.set(datetime(2026, 11, 30, 11, 0, tzinfo=SHANGHAI))
    assert await watch(core) == SlaReport(breached=1)
    assert mentioned(group(core)[-1]) == [("李主管", SUPERVISOR)]
