"""Issues #8 and #9 walked whole in the terminal chat, piped in line by line: a repair visit from the
report to "resolved on site", and a complaint from /complaint to an accepted solution, each as the
merchant and, with /as staff, as staff."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bot.app import build_core
from bot.clock import FrozenClock
from bot.config import Settings
from bot.storage.models import Attachment, FollowUp, Staff, Ticket, TicketEvent
from tests.conftest import SHANGHAI, RecordingMessenger, linked_merchant, make_settings
from tests.test_terminal_desk import REPORT, TERMINAL_USER, chat, said_after


async def merchant_with_a_terminal(settings: Settings, clock: FrozenClock) -> None:
    core = await build_core(settings, RecordingMessenger(), clock)
    await linked_merchant(
        core, TERMINAL_USER, name="Lucky Noodles", phone="13812345678", terminals=[("AB123456", "P300")]
    )
    await core.close()


def said_before(transcript: str, line: str) -> str:
    """What the terminal printed in answer to the piped `line` (its first occurrence), up to the next one."""
    return transcript.partition(f"> {line}\n")[2].partition("\n> ")[0]


def tiny_png(path: Path) -> Path:
    """A one-pixel PNG: the screenshot the merchant sends as evidence."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    return path


async def test_a_repair_visit_offered_twice_confirmed_and_resolved_on_site_walked_from_both_sides(
    sqlite_url: str,
) -> None:
    settings = make_settings(sqlite_url, default_locale="en")
    clock = FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))  # a Tuesday
    await merchant_with_a_terminal(settings, clock)

    transcript = await chat(
        settings,
        [
            *REPORT,  # ... a visit tomorrow morning preferred
            "/as staff",
            "Take",
            "Schedule visit",
            "Wed 11-25 10:00 (merchant's choice)",
            "/as merchant",
            "Ask for another time",
            "/as staff",
            "Schedule visit",
            "Wed 11-25 14:00",
            "/as merchant",
            "Confirm",
            "/as staff",
            "Resolved on site",
            "Replaced the print head \\",  # one reply of three lines: work done / parts / note
            "print head PH-2 \\",
            "tested with five receipts",
            "/as merchant",
            "/status",
        ],
        clock,
    )

    assert "Your ticket is R-2026-000001" in said_after(transcript, "1")
    assert "[staff chat]   [2] 📅 Schedule visit" in said_after(transcript, "Take")
    slots = said_before(transcript, "Schedule visit")
    assert "[staff chat]   [1] ⭐ Wed 11-25 10:00 (merchant's choice)" in slots
    assert "[staff chat]   [3] Wed 11-25 14:00" in slots
    offered = said_after(transcript, "Wed 11-25 10:00 (merchant's choice)")
    assert "can visit you on Wed 2026-11-25 10:00. Does this time suit you?" in offered
    assert "  [2] 🔁 Ask for another time" in offered
    another = said_after(transcript, "Ask for another time")
    assert "asked for another time than Wed 2026-11-25 10:00. Please schedule again." in another
    assert "We will offer you another time shortly." in another
    assert "can visit you on Wed 2026-11-25 14:00" in said_after(transcript, "Wed 11-25 14:00")
    confirmed = said_after(transcript, "Confirm")
    assert "[staff chat] ✅ R-2026-000001: the merchant confirmed the visit on Wed 2026-11-25 14:00." in confirmed
    assert "the visit on Wed 2026-11-25 14:00 is confirmed" in confirmed
    assert "[staff chat] 1. the work done" in said_after(transcript, "Resolved on site")
    resolved = said_after(transcript, "Replaced the print head \\")
    assert "… print head PH-2 \\\n… tested with five receipts\n" in resolved  # echoed as one message
    assert "[staff chat] Status: resolved" in resolved
    assert "[staff chat] ✅ Resolved on site" in resolved
    assert "[staff chat] Work done: Replaced the print head" in resolved
    assert "[staff chat] Parts replaced: print head PH-2" in resolved
    assert "[staff chat] Note: tested with five receipts" in resolved
    assert "Ticket R-2026-000001 is resolved: the technician's work is done." in resolved  # the merchant
    assert "Nothing took that line" not in transcript
    assert "R-2026-000001 – resolved – Printing" in said_after(transcript, "/status")

    core = await build_core(settings, RecordingMessenger(), clock)
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        staff = (await session.execute(select(Staff))).scalar_one()
        followups = (await session.execute(select(FollowUp).where(FollowUp.ticket_id == ticket.id))).scalars().all()
        events = (await session.execute(select(TicketEvent.action).order_by(TicketEvent.id))).scalars().all()
    await core.close()
    assert (ticket.status, ticket.resolution_method, ticket.assignee_id) == ("resolved", "onsite", staff.id)
    assert (ticket.work_done, ticket.parts_replaced, ticket.resolution_note) == (
        "Replaced the print head",
        "print head PH-2",
        "tested with five receipts",
    )
    assert (ticket.visit_at, ticket.visit_state) == (datetime(2026, 11, 25, 14, 0, tzinfo=SHANGHAI), "confirmed")
    assert [(f.event, f.status) for f in followups] == [("repair-resolved", "scheduled")]  # the post-repair check
    assert followups[0].send_at > clock.now()
    assert [e for e in events if e in ("created", "take", "schedule_visit", "resolved")] == [
        "created",
        "take",
        "schedule_visit",
        "schedule_visit",
        "resolved",
    ]


async def test_a_complaint_with_a_question_and_an_accepted_solution_walked_from_both_sides(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sqlite_url, default_locale="en")
    clock = FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))
    await merchant_with_a_terminal(settings, clock)
    screenshot = tiny_png(tmp_path / "bill.png")

    transcript = await chat(
        settings,
        [
            "/complaint",
            "Unreasonable fees",
            "I was charged the monthly fee twice",
            "2026-11-20 15:00",  # when
            "the sales rep Wang",  # who
            f"/file {screenshot}",
            "Done",
            "A refund or compensation",
            "Use 138****5678",
            "Submit",
            "/as staff",
            "Take",
            "Show photos",
            "Ask the merchant",
            "Which card was charged?",
            "/as merchant",
            "The business account card",
            "/as staff",
            "Propose a solution",
            "Refund or compensation",
            "We refund the second fee of 30 yuan within 3 working days",
            "/as merchant",
            "Accept",
            "/status",
        ],
        clock,
    )

    assert "Received 1 of at most 10" in said_after(transcript, f"/file {screenshot}")
    filed = said_after(transcript, "Submit")
    assert "[staff chat] 📣 Complaint C-2026-000001" in filed
    assert "[staff chat] 📎 Photos and documents: 1" in filed
    assert "Your complaint is recorded as C-2026-000001" in filed
    assert "[staff chat]   [5] ❓ Ask the merchant" in said_after(transcript, "Take")
    assert f"[staff chat] 📎 {screenshot}" in said_after(transcript, "Show photos")  # the evidence, by its file
    assert "your question for the merchant" in said_after(transcript, "Ask the merchant")
    asked = said_after(transcript, "Which card was charged?")
    assert "our team asks:\nWhich card was charged?" in asked  # said to the merchant
    answered = said_after(transcript, "The business account card")
    assert "[staff chat] Answer: The business account card" in answered
    assert "Your answer was passed to the team handling complaint C-2026-000001" in answered
    assert "[staff chat]   [2] Refund or compensation" in said_after(transcript, "Propose a solution")
    assert "reply to this message with the solution" in said_after(transcript, "Refund or compensation")
    proposed = said_after(transcript, "We refund the second fee of 30 yuan within 3 working days")
    assert "Our proposal for your complaint C-2026-000001 (Refund or compensation)" in proposed
    assert "  [1] ✅ Accept" in proposed
    accepted = said_after(transcript, "Accept")
    assert "[staff chat] Status: resolved" in accepted
    assert "[staff chat] 🤝 Agreed outcome: Refund or compensation" in accepted
    assert "You accepted the proposal for complaint C-2026-000001" in accepted
    assert "Nothing took that line" not in transcript and "Please tap one of the buttons" not in transcript
    assert "C-2026-000001 – resolved – Unreasonable fees" in said_after(transcript, "/status")

    core = await build_core(settings, RecordingMessenger(), clock)
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        staff = (await session.execute(select(Staff))).scalar_one()
        evidence = (await session.execute(select(Attachment.file_name))).scalars().all()
    await core.close()
    assert (ticket.kind, ticket.number, ticket.status, ticket.assignee_id) == (
        "complaint",
        "C-2026-000001",
        "resolved",
        staff.id,
    )
    assert (ticket.category, ticket.outcome_wanted) == ("unreasonable_fees", "refund")
    assert (ticket.proposed_outcome, ticket.agreed_outcome) == ("refund", "refund")
    assert ticket.proposal == "We refund the second fee of 30 yuan within 3 working days"
    assert ticket.question is None  # answered
    assert evidence == ["bill.png"]
