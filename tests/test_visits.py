"""Visit appointments: the times staff may offer (pure), and the merchant's answer to an offer (service)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.delivery.callbacks import CaseButton, VisitAnswer, VisitSlot, unpack
from bot.domain.calendar import WorkCalendar
from bot.domain.desk_policy import WorkingHours
from bot.domain.visits import epoch_minutes, from_epoch_minutes, visit_slots
from bot.services.turn import Incoming
from bot.storage.models import Ticket, TicketEvent
from tests.conftest import SHANGHAI, STAFF_CHAT, RecordingMessenger, add_staff
from tests.test_case_desk import ENGINEER, SHOP, open_repair, press

HOURS = WorkingHours()  # 09:00-18:00


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def weekdays(day: date) -> bool:
    return day.weekday() < 5


def calendar(source: object = weekdays) -> WorkCalendar:
    return WorkCalendar("Asia/Shanghai", source=source)  # type: ignore[arg-type]


# ---- the times on offer ----------------------------------------------------------------------------------


def test_slots_are_the_next_three_working_days_at_ten_and_two_and_none_already_gone() -> None:
    tuesday_ten = at(2026, 11, 24, 10, 0)
    slots = visit_slots(tuesday_ten, calendar(), HOURS)
    assert slots == [
        at(2026, 11, 24, 14, 0),  # today's 10:00 is now: too late to send anyone
        at(2026, 11, 25, 10, 0),
        at(2026, 11, 25, 14, 0),
        at(2026, 11, 26, 10, 0),
        at(2026, 11, 26, 14, 0),
    ]


def test_after_friday_work_the_slots_skip_the_weekend() -> None:
    slots = visit_slots(at(2026, 11, 27, 17, 30), calendar(), HOURS)
    assert {s.date() for s in slots} == {date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)}
    assert len(slots) == 6


def test_holidays_are_skipped_and_a_make_up_saturday_is_worked() -> None:
    def source(day: date) -> bool:
        if day == date(2026, 11, 28):  # a make-up working Saturday (调休)
            return True
        return day.weekday() < 5 and day not in (date(2026, 11, 26), date(2026, 11, 27))

    slots = visit_slots(at(2026, 11, 25, 15, 0), calendar(source), HOURS)
    assert {s.date() for s in slots} == {date(2026, 11, 28), date(2026, 11, 30), date(2026, 12, 1)}


def test_the_merchants_preferred_time_comes_first_while_it_is_still_ahead() -> None:
    now = at(2026, 11, 24, 10, 0)
    preferred = at(2026, 11, 25, 16, 30)
    assert visit_slots(now, calendar(), HOURS, preferred=preferred)[0] == preferred
    assert preferred not in visit_slots(preferred + timedelta(minutes=1), calendar(), HOURS, preferred=preferred)
    # A preferred time that is one of the usual slots is offered once.
    usual = at(2026, 11, 25, 10, 0)
    slots = visit_slots(now, calendar(), HOURS, preferred=usual)
    assert slots[0] == usual and slots.count(usual) == 1


def test_only_times_inside_staff_working_hours_are_offered() -> None:
    afternoons = WorkingHours(start=time(13, 0), end=time(18, 0))
    slots = visit_slots(at(2026, 11, 24, 8, 0), calendar(), afternoons)
    assert [s.time() for s in slots] == [time(14, 0)] * 3
    late = WorkingHours(start=time(15, 0), end=time(18, 0))
    assert {s.time() for s in visit_slots(at(2026, 11, 24, 8, 0), calendar(), late)} == {time(15, 0)}


@pytest.mark.parametrize("hour", range(0, 24, 3))
def test_every_slot_is_ahead_on_a_working_day_inside_working_hours(hour: int) -> None:
    cal = WorkCalendar("Asia/Shanghai")  # the real holiday calendar
    for day in range(14):
        now = at(2026, 9, 24, hour, 0) + timedelta(days=day)  # across National Day
        slots = visit_slots(now, cal, HOURS)
        assert len({s.date() for s in slots}) == 3
        for slot in slots:
            assert slot > now and cal.is_workday(slot.date()) and HOURS.start <= slot.time() < HOURS.end


def test_a_slot_fits_on_a_button_and_comes_back_the_same() -> None:
    slot = at(2026, 11, 25, 14, 0)
    assert from_epoch_minutes(epoch_minutes(slot)) == slot
    for data in (VisitSlot(2**31 - 1, epoch_minutes(slot)), VisitAnswer(2**31 - 1, epoch_minutes(slot), "another")):
        packed = data.pack()
        assert len(packed.encode()) <= 64 and unpack(packed) == data


# ---- the merchant's answer, through the service ------------------------------------------------------------

_updates = iter(range(50_000, 60_000))


def messenger(core: Core) -> RecordingMessenger:
    sent = core.outbox.messenger
    assert isinstance(sent, RecordingMessenger)
    return sent


async def merchant_presses(core: Core, user: int, data: VisitAnswer) -> str | None:
    incoming = Incoming(user, user, "button", update_id=next(_updates), data=data.pack(), message_id=7)
    outcome = await core.service.handle(incoming)
    await core.outbox.deliver()
    return outcome.callback_text


async def scheduled(core: Core, slot: datetime) -> int:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)
    await press(core, ENGINEER, CaseButton(ticket_id, "take"))
    await press(core, ENGINEER, CaseButton(ticket_id, "schedule_visit"))
    await press(core, ENGINEER, VisitSlot(ticket_id, epoch_minutes(slot)))
    return ticket_id


async def test_the_merchant_is_asked_once_in_their_language_with_confirm_and_another_time(core: Core) -> None:
    ticket_id = await scheduled(core, at(2026, 11, 25, 14, 0))
    offers = [p for c, p in messenger(core).sent if c == SHOP and p.get("reply_markup")]
    assert len(offers) == 1
    assert "Wed 2026-11-25 14:00" in offers[0]["text"] and "Wang Gong" in offers[0]["text"]
    labels = [b["text"] for row in offers[0]["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["✅ Confirm", "🔁 Ask for another time"]
    assert not any("technician visit is planned" in text for text in messenger(core).texts(SHOP))
    offered = await core_ticket(core, ticket_id)
    assert (offered.status, offered.visit_state) == ("visit_scheduled", "proposed")
    assert offered.visit_at == at(2026, 11, 25, 14, 0)


async def test_an_answer_to_an_appointment_since_changed_is_stale_and_changes_nothing(core: Core) -> None:
    first = at(2026, 11, 25, 14, 0)
    ticket_id = await scheduled(core, first)
    await press(core, ENGINEER, CaseButton(ticket_id, "schedule_visit"))
    await press(core, ENGINEER, VisitSlot(ticket_id, epoch_minutes(at(2026, 11, 26, 10, 0))))
    old = VisitAnswer(ticket_id, epoch_minutes(first), "confirm")
    assert await merchant_presses(core, SHOP, old) == "This question is closed."
    moved = await core_ticket(core, ticket_id)
    assert (moved.visit_at, moved.visit_state) == (at(2026, 11, 26, 10, 0), "proposed")
    assert "visit_confirmed" not in await events(core, ticket_id)


async def test_a_past_slot_is_refused_to_staff(core: Core) -> None:
    await add_staff(core, ENGINEER, "aftersales", "Wang Gong")
    ticket_id = await open_repair(core)
    await press(core, ENGINEER, CaseButton(ticket_id, "take"))
    text = await press(core, ENGINEER, VisitSlot(ticket_id, epoch_minutes(at(2026, 11, 24, 9, 0))))
    assert text is not None and "已过" in text
    assert (await core_ticket(core, ticket_id)).visit_at is None


async def test_confirming_tells_the_group_and_the_case_shows_it(core: Core) -> None:
    slot = at(2026, 11, 25, 14, 0)
    ticket_id = await scheduled(core, slot)
    await merchant_presses(core, SHOP, VisitAnswer(ticket_id, epoch_minutes(slot), "confirm"))
    assert (await core_ticket(core, ticket_id)).visit_state == "confirmed"
    group = messenger(core).texts(STAFF_CHAT)
    assert any("商户已确认" in text for text in group)
    assert "已确认上门" in group[-2] or "已确认上门" in group[-1]
    assert "confirmed" in messenger(core).texts(SHOP)[-1]


async def core_ticket(core: Core, ticket_id: int) -> Ticket:
    async with core.sessions() as session:
        found = await session.get(Ticket, ticket_id)
        assert found is not None
        return found


async def events(core: Core, ticket_id: int) -> list[str]:
    async with core.sessions() as session:
        rows = await session.execute(
            select(TicketEvent.action).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return list(rows.scalars())
