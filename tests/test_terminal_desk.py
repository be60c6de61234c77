"""Both sides of a case walked in the terminal chat, piped in line by line, on a clock the chat moves itself."""

from __future__ import annotations

import io
from datetime import datetime

from sqlalchemy import select

from bot.app import build_core, run_terminal
from bot.clock import FrozenClock
from bot.config import Settings
from bot.services.merchants import add_merchant
from bot.storage.models import Merchant, Staff, Ticket, TicketEvent
from tests.conftest import SHANGHAI, RecordingMessenger, linked_merchant, make_settings

TERMINAL_USER = 1  # Settings.terminal_user_id
# /repair in the terminal: terminal AB123456, printing, cannot take payments, a description, no photo,
# the tips did not help, a visit tomorrow morning, the phone on file, submit.
# Printing fault, "cannot take payments" (3: No), so the case is urgent: 30 working minutes to respond.
REPORT = ["/repair", "1", "Printing", "3", "paper jams", "Skip", "2", "1", "1", "1"]


async def chat(settings: Settings, lines: list[str], clock: FrozenClock) -> str:
    out = io.StringIO()
    await run_terminal(settings, io.StringIO("\n".join(lines) + "\n"), out, clock=clock)
    return out.getvalue()


def said_after(transcript: str, line: str) -> str:
    """What the terminal printed in answer to the piped `line` (its last occurrence), up to the next one."""
    return transcript.rpartition(f"> {line}\n")[2].partition("\n> ")[0]


async def test_a_report_walked_as_merchant_and_as_staff_with_an_sla_warning_on_the_way(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, default_locale="en")
    clock = FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))  # a Tuesday
    core = await build_core(settings, RecordingMessenger(), clock)
    await linked_merchant(
        core, TERMINAL_USER, name="Lucky Noodles", phone="13812345678", terminals=[("AB123456", "P300")]
    )
    await core.close()

    transcript = await chat(
        settings,
        [*REPORT, "/wait 25m", "/as staff", "Take", "5", "/as merchant", "/status"],
        clock,
    )

    assert "Your ticket is R-2026-000001" in said_after(transcript, "1")
    waited = said_after(transcript, "/wait 25m")
    assert "2026-11-24 10:25" in waited
    assert "[staff chat] ⏳ R-2026-000001: first response due by 2026-11-24 10:30" in waited
    assert "Terminal supervisor is staff now: supervisor" in said_after(transcript, "/as staff")
    taken = said_after(transcript, "Take")
    assert "[staff chat] Status: being handled · For: after-sales · Handler: Terminal supervisor" in taken
    assert "[staff chat]   [5] ✅ Resolved remotely" in taken
    assert "R-2026-000001 is being handled by Terminal supervisor" in taken  # the merchant is told
    resolved = said_after(transcript, "5")
    assert "(R-2026-000001: resolved)" in resolved and "[staff chat] ✅ Resolved remotely" in resolved
    assert "R-2026-000001" in resolved.rpartition("[staff chat]")[2]  # and the merchant is told
    assert "You are the merchant again" in said_after(transcript, "/as merchant")
    assert "R-2026-000001 – resolved" in said_after(transcript, "/status")  # finished this week: still listed

    core = await build_core(settings, RecordingMessenger(), clock)
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        staff = (await session.execute(select(Staff))).scalar_one()
        events = (await session.execute(select(TicketEvent.action, TicketEvent.actor).order_by(TicketEvent.id))).all()
    await core.close()
    assert (ticket.status, ticket.resolution_method, ticket.assignee_id) == ("resolved", "remote", staff.id)
    assert ticket.respond_warned_at is not None and ticket.respond_breached_at is None
    assert (staff.telegram_user_id, staff.role) == (TERMINAL_USER, "supervisor")
    assert events == [
        ("created", f"merchant:{TERMINAL_USER}"),
        ("take", f"staff:{TERMINAL_USER}"),
        ("resolved", f"staff:{TERMINAL_USER}"),
    ]


async def test_the_share_my_phone_number_button_shows_and_shares_the_terminal_users_own_number(
    sqlite_url: str,
) -> None:
    settings = make_settings(sqlite_url, default_locale="en")
    clock = FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))
    core = await build_core(settings, RecordingMessenger(), clock)
    async with core.sessions() as session, session.begin():
        await add_merchant(session, name="Tea House", phone="13900002222", now=clock.now(), terminals=[])
    await core.close()

    transcript = await chat(settings, ["/start", "1", "13900002222", "1"], clock)

    assert "  [1] 📱 Share my phone number" in said_after(transcript, "/start")
    assert "Which phone number should the terminal share as yours?" in transcript
    assert "Thank you, Tea House. Your shop is now linked to this chat." in said_after(transcript, "13900002222")
    core = await build_core(settings, RecordingMessenger(), clock)
    async with core.sessions() as session:
        merchant = (await session.execute(select(Merchant))).scalar_one()
    await core.close()
    assert merchant.telegram_user_id == TERMINAL_USER


async def test_wait_and_as_explain_themselves_when_misused(sqlite_url: str) -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))
    transcript = await chat(
        make_settings(sqlite_url, default_locale="en"), ["/wait soon", "/as boss", "/as staff", "/opne"], clock
    )
    assert "/wait 30m, /wait 2h or /wait 1d" in said_after(transcript, "/wait soon")
    assert "/as staff or /as merchant" in said_after(transcript, "/as boss")
    assert "Staff commands here: " in said_after(transcript, "/opne") and "/open" in said_after(transcript, "/opne")
