"""The xlsx export serializes rows itself: what a spreadsheet reads back is what openpyxl's own
write-only worksheet would have written for the same values."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook

from bot.services.export import XlsxWriter

ROWS: list[list[Any]] = [
    [1, "plain", None, True, False, datetime(2026, 11, 23, 10, 0), 2.5],
    [None, "a & b < c > d", "  spaced  ", "line\nbreak", "carriage\r\nreturn", datetime(1900, 1, 15, 6, 30)],
    ["中文 · 🔧", "tab\tinside", "x" * 40_000, -7, 10**15, datetime(2026, 1, 1, 0, 0, 0, 500_000)],
    ["+86 138", "#N/A", "'quoted", "<t>not a tag</t>", None, None, None],
    [Decimal("2.50"), float("nan"), 1e-7, 123456789.123, None, None, None],
]


def read(path: Path) -> list[tuple[Any, ...]]:
    rows = load_workbook(path, read_only=True)["Sheet"].iter_rows(values_only=True)
    return [tuple(v for v in row) for row in rows]


def test_rows_read_back_as_openpyxl_would_have_written_them(tmp_path: Path) -> None:
    ours = XlsxWriter(tmp_path / "ours.xlsx")
    ours.sheet("s", "Sheet", ["A", "B", "C", "D", "E", "F", "G"])
    for row in ROWS:
        ours.row(row)
    ours.close()

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sheet")
    sheet.append(["A", "B", "C", "D", "E", "F", "G"])
    for row in ROWS:
        sheet.append(row)
    book.save(tmp_path / "openpyxl.xlsx")

    assert read(tmp_path / "ours.xlsx") == read(tmp_path / "openpyxl.xlsx")


def test_text_openpyxl_would_refuse_or_run_is_kept_as_words(tmp_path: Path) -> None:
    ours = XlsxWriter(tmp_path / "ours.xlsx")
    ours.sheet("s", "Sheet", ["Said"])
    ours.row(['=HYPERLINK("http://x")'])
    ours.row(["bell\x07 and nul\x00 and a lone surrogate\ud800 dropped"])
    ours.close()
    assert read(tmp_path / "ours.xlsx")[1:] == [
        ('=HYPERLINK("http://x")',),
        ("bell and nul and a lone surrogate dropped",),
    ]


async def test_answers_read_the_same_on_either_database(database_url: str, tmp_path: Path) -> None:
    """Answers are read as their JSON text, cast in SQL (the drivers would otherwise decode it, or not)."""
    from tests.test_export import PAYMENTS_EN, POST_REPAIR_EN, export, fill, sheet

    await fill(database_url)
    await export(database_url, tmp_path / "out.xlsx", locale="en")
    v1, v2, phoned = sheet(tmp_path / "out.xlsx", "Survey answers")
    assert (v1[PAYMENTS_EN], v2[PAYMENTS_EN]) == ("Yes", "Partly (some cards or channels fail)")
    assert v1["🔧 Repair report · Contact phone"] == "138****5678"
    assert v1["🔧 Repair report · Description"] == "paper jams, call 139****5678"
    assert phoned[f"{POST_REPAIR_EN} · Satisfaction"] == 4
