"""`posbot export`: the spreadsheet operations open, on a small database whose rows are written here."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert

from bot.dialogs.loader import load_forms
from bot.services.export import Export, ExportOptions, writer_for
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.models import (
    Answer,
    FollowUp,
    Merchant,
    Staff,
    Submission,
    Terminal,
    Ticket,
    TicketEvent,
)

ROOT = Path(__file__).resolve().parent.parent
MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
ENGINEER = 700001
SHEETS_EN = ["Tickets", "Follow-ups", "Survey answers", "Complaints"]
SHEETS_ZH = ["工单", "回访", "问卷答案", "投诉"]
PAYMENTS_EN = "🔧 Repair report · Can take payments"
POST_REPAIR_EN = "After your repair"


async def fill(url: str) -> None:
    """Lucky Noodles: two repair reports (on form versions 1 and 2), a repair case handled on site,
    a complaint reopened once, and a post-repair follow-up answered late, by phone."""
    await upgrade_async(url)
    engine = create_engine(url)
    at = MONDAY
    async with engine.begin() as db:
        await db.execute(
            insert(Merchant),
            [{"id": 1, "name": "Lucky Noodles", "phone": "+8613812345678", "invite_code": "c1", "created_at": at}],
        )
        await db.execute(
            insert(Terminal), [{"id": 1, "serial": "AB123456", "merchant_id": 1, "model": "P300", "installed_at": at}]
        )
        await db.execute(
            insert(Staff), [{"id": 1, "telegram_user_id": ENGINEER, "name": "Wang Gong", "role": "aftersales"}]
        )
        await db.execute(
            insert(Ticket),
            [
                {
                    "id": 1,
                    "number": "R-2026-000001",
                    "kind": "repair",
                    "status": "closed",
                    "merchant_id": 1,
                    "terminal_id": 1,
                    "serial": "AB123456",
                    "category": "printing",
                    "severity": "partial",
                    "role": "aftersales",
                    "description": "prints blank, call me on 13912345678",
                    "contact_phone": "+8613812345678",
                    "assignee_id": 1,
                    "created_at": at,
                    "first_response_at": at + timedelta(minutes=25),
                    "resolved_at": at + timedelta(hours=26),
                    "closed_at": at + timedelta(hours=30),
                    "resolution_method": "onsite",
                    "work_done": "replaced the print head",
                    "resolve_breached_at": at + timedelta(hours=24),
                }
            ],
        )
        await db.execute(
            insert(Ticket),
            [
                {
                    "id": 2,
                    "number": "C-2026-000002",
                    "kind": "complaint",
                    "status": "reopened",
                    "merchant_id": 1,
                    "category": "staff_attitude",
                    "severity": "normal",
                    "role": "supervisor",
                    "serious": True,
                    "description": '=HYPERLINK("http://x") rude on the phone',
                    "outcome_wanted": "apology",
                    "reopen_count": 1,
                    "assignee_id": 1,
                    "created_at": at + timedelta(days=1),
                },
            ],
        )
        events = [
            (1, "created", 0),
            (1, "take", 25),
            (1, "schedule_visit", 60),
            (1, "resolved", 26 * 60),
            (1, "close", 30 * 60),
            (2, "created", 24 * 60),
            (2, "reopened", 48 * 60),
        ]
        await db.execute(
            insert(TicketEvent),
            [
                {"ticket_id": t, "at": at + timedelta(minutes=m), "actor": "system", "action": a, "detail": {}}
                for t, a, m in events
            ],
        )
        await db.execute(
            insert(FollowUp),
            [
                {
                    "id": 1,
                    "kind": "repair",
                    "form_key": "post_repair",
                    "merchant_id": 1,
                    "terminal_id": 1,
                    "ticket_id": 1,
                    "source_key": "repair:1",
                    "status": "completed",
                    "send_at": at + timedelta(days=2),
                    "window_end": at + timedelta(days=4),
                    "completed_at": at + timedelta(days=5),
                    "method": "phone",
                    "handled_by": ENGINEER,
                    "created_at": at,
                }
            ],
        )
        submissions: list[dict[str, Any]] = [
            {"id": 1, "form_key": "repair", "form_version": 1, "method": "chat", "operator_id": None},
            {"id": 2, "form_key": "repair", "form_version": 2, "method": "chat", "operator_id": None},
            {"id": 3, "form_key": "post_repair", "form_version": 1, "method": "phone", "operator_id": ENGINEER},
        ]
        await db.execute(
            insert(Submission),
            [
                {
                    **s,
                    "telegram_user_id": 5151,
                    "merchant_id": 1,
                    "followup_id": 1 if s["id"] == 3 else None,
                    "status": "submitted",
                    "locale": "en",
                    "started_at": at + timedelta(hours=s["id"]),
                    "finished_at": at + timedelta(hours=s["id"], minutes=3),
                }
                for s in submissions
            ],
        )
        answers = [
            (1, "category", "choice", "printing"),
            (1, "can_take_payments", "yes_no", True),
            (1, "description", "text", "paper jams, call 13912345678"),
            (1, "phone", "phone", "+8613812345678"),
            (2, "category", "choice", "network"),
            (2, "can_take_payments", "choice", "partly"),
            (3, "fixed", "yes_no", True),
            (3, "satisfaction", "rating", 4),
        ]
        await db.execute(
            insert(Answer),
            [
                {"submission_id": s, "question_key": q, "kind": k, "value": v, "answered_at": at}
                for s, q, k, v in answers
            ],
        )
    await engine.dispose()


async def export(url: str, target: Path | str, fmt: str = "xlsx", **options: Any) -> dict[str, int]:
    engine = create_engine(url)
    try:
        job = Export(session_factory(engine), load_forms(), ExportOptions(**options))
        summary = await job.write(writer_for(fmt, target))  # type: ignore[arg-type]
        return summary.rows
    finally:
        await engine.dispose()


def sheet(path: Path, name: str) -> list[dict[str, Any]]:
    rows = list(load_workbook(path, read_only=True)[name].iter_rows(values_only=True))
    # A row read back ends at its last filled cell.
    return [{h: row[i] if i < len(row) else None for i, h in enumerate(rows[0])} for row in rows[1:]]


@pytest.fixture
async def filled(sqlite_url: str) -> str:
    await fill(sqlite_url)
    return sqlite_url


async def test_the_workbook_has_four_sheets_with_their_columns_in_english(filled: str, tmp_path: Path) -> None:
    target = tmp_path / "out.xlsx"
    rows = await export(filled, target, locale="en")
    assert rows == {"tickets": 2, "followups": 1, "answers": 3, "complaints": 1}
    assert load_workbook(target, read_only=True).sheetnames == SHEETS_EN

    (repair, complaint) = sheet(target, "Tickets")
    assert repair["Case number"] == "R-2026-000001"
    assert repair["Category"] == "Printing"
    assert repair["Handled by"] == "Wang Gong"
    assert repair["First response (minutes)"] == 25
    assert repair["Resolution method"] == "onsite"
    assert (repair["Visits scheduled"], repair["Timeline events"]) == (1, 5)
    assert repair["Resolution deadline missed"] is True and repair["Response deadline missed"] is False
    assert repair["Opened at"] == datetime(2026, 11, 23, 10, 0)  # Shanghai wall-clock time
    assert repair["Terminal model"] == "P300"
    assert complaint["Times reopened"] == 1

    (followup,) = sheet(target, "Follow-ups")
    assert (followup["Method"], followup["Operator"], followup["On time"]) == ("phone", "Wang Gong", False)
    assert followup["Case number"] == "R-2026-000001"

    (only,) = sheet(target, "Complaints")
    assert only["Subject"] == "Staff attitude"
    assert only["Serious"] is True and only["Times reopened"] == 1
    # A merchant's words that start like a formula stay words.
    assert str(only["Description"]).startswith("=HYPERLINK")


async def test_answers_to_both_repair_versions_land_in_one_column_each_read_as_its_version_says(
    filled: str, tmp_path: Path
) -> None:
    target = tmp_path / "out.xlsx"
    await export(filled, target, locale="en")
    headers = next(load_workbook(target, read_only=True)["Survey answers"].iter_rows(values_only=True))
    assert len(headers) == len(set(headers))
    assert headers.count(PAYMENTS_EN) == 1
    v1, v2, phoned = sheet(target, "Survey answers")
    assert (v1["Form version"], v1[PAYMENTS_EN]) == (1, "Yes")  # version 1 asked yes/no
    assert (v2["Form version"], v2[PAYMENTS_EN]) == (2, "Partly (some cards or channels fail)")
    assert v1["🔧 Repair report · Fault"] == "Printing" and v2["🔧 Repair report · Fault"] == "Network / SIM"
    assert (phoned["Method"], phoned["Operator"]) == ("phone", "Wang Gong")
    assert phoned[f"{POST_REPAIR_EN} · Satisfaction"] == 4  # a number, for averages


async def test_headers_and_answers_in_chinese(filled: str, tmp_path: Path) -> None:
    target = tmp_path / "out.xlsx"
    await export(filled, target, locale="zh_CN")
    assert load_workbook(target, read_only=True).sheetnames == SHEETS_ZH
    v1, v2, _ = sheet(target, "问卷答案")
    assert v1["🔧 终端报修 · 能否收款"] == "是"
    assert v2["🔧 终端报修 · 能否收款"] == "部分可以（部分卡或渠道失败）"
    (repair, _) = sheet(target, "工单")
    assert repair["工单号"] == "R-2026-000001" and repair["处理人"] == "Wang Gong"


def every_cell(path: Path) -> str:
    book = load_workbook(path, read_only=True)
    return "\n".join(str(v) for ws in book for row in ws.iter_rows(values_only=True) for v in row if v is not None)


async def test_phone_numbers_are_masked_unless_asked_for_in_full(filled: str, tmp_path: Path) -> None:
    masked = tmp_path / "masked.xlsx"
    await export(filled, masked, locale="en")
    text = every_cell(masked)
    assert "138****5678" in text and "139****5678" in text
    assert "13812345678" not in text and "13912345678" not in text

    full = tmp_path / "full.xlsx"
    await export(filled, full, locale="en", full_phones=True)
    assert "+8613812345678" in every_cell(full) and "13912345678" in every_cell(full)


async def test_a_period_keeps_only_its_rows(filled: str, tmp_path: Path) -> None:
    later = MONDAY + timedelta(hours=12)
    rows = await export(filled, tmp_path / "out.xlsx", since=later)
    # The complaint (Tuesday) and the follow-up (Wednesday) are in; Monday's repair case and reports are not.
    assert rows == {"tickets": 1, "followups": 1, "answers": 0, "complaints": 1}


def posbot(*args: str, env: dict[str, str], module: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` (or `python ARGS`), as an operator's shell would run it."""
    clean = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "STAFF_CHAT_ID", "DATABASE_URL")}
    clean.update(env)
    command = [sys.executable, "-m", "bot", *args] if module else [sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, env=clean, cwd=ROOT, timeout=120)


async def test_the_command_writes_one_csv_file_per_sheet(filled: str, tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    env = {"DATABASE_URL": filled, "DEFAULT_LOCALE": "en"}
    done = posbot("export", "--format", "csv", "-o", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert "Exported 2 tickets, 1 follow-ups, 3 survey submissions and 1 complaints" in done.stdout
    for name in ("tickets", "followups", "answers", "complaints"):
        assert (tmp_path / f"report-{name}.csv").exists()
    with (tmp_path / "report-answers.csv").open(encoding="utf-8-sig", newline="") as handle:
        v1, v2, _ = list(csv.DictReader(handle))
    assert (v1[PAYMENTS_EN], v2[PAYMENTS_EN]) == ("Yes", "Partly (some cards or channels fail)")
    with (tmp_path / "report-complaints.csv").open(encoding="utf-8-sig", newline="") as handle:
        (complaint,) = list(csv.DictReader(handle))
    assert complaint["Description"].startswith("'=HYPERLINK")  # a spreadsheet will not run it
    assert "13812345678" not in (tmp_path / "report-tickets.csv").read_text(encoding="utf-8-sig")

    bad = posbot("export", "--from", "yesterday", "-o", str(tmp_path / "x.xlsx"), env={"DATABASE_URL": filled})
    assert bad.returncode == 2 and "yesterday" in bad.stderr

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    unwritable = posbot("export", "-o", str(blocker / "out.xlsx"), env=env)
    assert unwritable.returncode == 1
    (said,) = unwritable.stderr.strip().splitlines()  # one line, the operating system's reason at its end
    assert said.startswith(f"posbot: Cannot write {blocker / 'out.xlsx'}: ")


async def test_csv_into_a_directory_named_with_a_trailing_slash(filled: str, tmp_path: Path) -> None:
    folder = tmp_path / "sheets"
    await export(filled, f"{folder}/", fmt="csv", locale="zh_CN")
    assert sorted(p.name for p in folder.iterdir()) == [
        "answers.csv",
        "complaints.csv",
        "followups.csv",
        "tickets.csv",
    ]
    with (folder / "tickets.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert next(csv.reader(handle))[:3] == ["工单号", "类型", "状态"]


async def test_the_export_command_does_not_load_the_telegram_library(filled: str, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from bot.cli import app\n"
        "try:\n"
        f"    app(['export', '-o', {str(tmp_path / 'x.xlsx')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('aiogram' in sys.modules)\n"
    )
    done = posbot("-c", script, env={"DATABASE_URL": filled}, module=False)
    assert (tmp_path / "x.xlsx").exists(), done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
