"""The operator's path on a demo database, as separate commands in their own processes:
`posbot seed-demo`, then `posbot report --format json`, `posbot report --chart`, and
`posbot export --format xlsx`; each reads what the seeded history holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.test_report_indicators import INDICATORS

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UNTIL = "2026-11-20"  # in the past: the report counts nothing after today
PERIOD = ["--from", "2026-11-06", "--to", UNTIL]


def posbot(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "DEFAULT_LOCALE": "en",
        "LOG_LEVEL": "WARNING",
        "BOT_TOKEN": "",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def test_seed_demo_then_report_chart_and_export_work_on_what_it_made(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    seeded = posbot(database, "seed-demo", "--merchants", "10", "--days", "14", "--until", UNTIL, "--seed", "3")
    assert seeded.returncode == 0, seeded.stderr

    report = posbot(database, "report", *PERIOD, "--format", "json")
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)
    assert list(found) == list(INDICATORS)
    # A seeded history has follow-ups, ratings and cases: these indicators have values, not "no data".
    for name in ("timeliness_rate", "satisfaction_rate", "average_rating", "resolution_rate"):
        assert found[name]["value"] is not None, name
        assert isinstance(found[name]["met"], bool), name
    assert 1 <= found["average_rating"]["value"] <= 5
    assert 0 < found["timeliness_rate"]["value"] <= 1

    chart = tmp_path / "out.png"
    drawn = posbot(database, "report", *PERIOD, "--chart", str(chart))
    assert drawn.returncode == 0, drawn.stderr
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
    assert chart.stat().st_size > 10_000  # three panels with data, not an empty canvas

    sheet_file = tmp_path / "out.xlsx"
    exported = posbot(database, "export", "--format", "xlsx", "-o", str(sheet_file))
    assert exported.returncode == 0, exported.stderr
    workbook = load_workbook(sheet_file, read_only=True)
    assert len(workbook.sheetnames) == 4
    # Every sheet has its header row and the seeded rows under it.
    for sheet in workbook.worksheets:
        assert sum(1 for _ in sheet.iter_rows(values_only=True)) > 1, sheet.title
