"""`posbot report`: the JSON an operator scripts against, the localized text, and the chart, drawn with
Chinese labels from the font the package brings (no system CJK font needed)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.app import build_core
from bot.clock import FrozenClock
from bot.domain.indicators import INDICATORS
from bot.i18n import Translator
from bot.services.chart import cjk_font_path, draw
from bot.services.indicators import Period, period_report
from tests.conftest import SHANGHAI, RecordingMessenger, make_settings
from tests.test_report_indicators import seed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# After the hand-made November: the CLI reads the system clock, and the whole month is past.
NOVEMBER = ["--from", "2026-11-01", "--to", "2026-11-23"]


@pytest.fixture
def seeded(sqlite_url: str) -> str:
    async def build() -> None:
        core = await build_core(
            make_settings(sqlite_url), RecordingMessenger(), FrozenClock(datetime(2026, 11, 24, 2, tzinfo=UTC))
        )
        try:
            await seed(core)
        finally:
            await core.close()

    asyncio.run(build())
    return sqlite_url


def posbot(url: str, *args: str) -> Any:
    env = {"DATABASE_URL": url, "DEFAULT_LOCALE": "en", "LOG_LEVEL": "WARNING"}
    from bot.cli import app

    return CliRunner().invoke(app, ["report", *args], env=env)


def test_json_has_every_indicator_with_its_target_and_whether_it_is_met(seeded: str) -> None:
    result = posbot(seeded, *NOVEMBER, "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert list(found) == list(INDICATORS)
    for name in INDICATORS:
        assert {"value", "target", "met"} <= set(found[name]), name
    timeliness = found["timeliness_rate"]
    assert (timeliness["value"], timeliness["target"], timeliness["met"]) == (0.875, 0.95, False)
    assert timeliness["numerator"] == 7 and timeliness["denominator"] == 8
    assert found["complaints"]["value"] == 4 and isinstance(found["complaints"]["value"], int)
    assert found["first_response_minutes_median"]["p90"] == 90
    assert {row["key"] for row in found["resolution_rate"]["by"]["staff"]} == {"Wang", "Li", ""}
    assert found["resolution_rate"]["faults"][0] == {"category": "printing", "count": 6}


def test_text_is_in_the_chosen_language(seeded: str) -> None:
    english = posbot(seeded, *NOVEMBER)
    assert english.exit_code == 0, english.output
    assert "❌ Follow-up timeliness: 87.5% (7/8), target ≥ 95.0%" in english.stdout
    assert "no breakdown by region" in english.stdout
    chinese = posbot(seeded, *NOVEMBER, "--lang", "zh_CN")
    assert "❌ 回访及时率：87.5%（7/8），目标 ≥ 95.0%" in chinese.stdout
    assert "故障分布：打印 6、网络 / SIM 卡 4、（无） 1" in chinese.stdout


def test_bad_dates_are_refused_in_one_line(seeded: str) -> None:
    result = posbot(seeded, "--from", "yesterday")
    assert result.exit_code == 2
    assert "yesterday is not a date" in result.output
    result = posbot(seeded, "--from", "2026-11-20", "--to", "2026-11-01")
    assert result.exit_code == 2


def test_the_chart_is_a_png_written_where_asked(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = posbot(seeded, *NOVEMBER, "--format", "json", "--chart", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["nps"]["value"] == 0  # stdout stays pure JSON
    assert out.read_bytes().startswith(PNG_SIGNATURE)


async def test_chinese_labels_render_with_no_missing_glyph(core: Any, database_url: str) -> None:
    """Every label of the zh_CN chart has its glyphs: matplotlib warns "Glyph ... missing from font(s)" for
    any it has to draw as an empty box."""
    await seed(core)
    async with core.sessions() as session:
        period = Period.of_days(date(2026, 11, 1), date(2026, 11, 30), SHANGHAI, core.clock.now())
        report = await period_report(session, core.policy, period, weeks=True)
    assert len(report.weeks) >= 8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = draw(report, Translator("zh_CN"), SHANGHAI)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert png.startswith(PNG_SIGNATURE)
    from matplotlib import font_manager

    # The font is the package's own file, not one the machine happens to have.
    assert any(f.fname == str(cjk_font_path()) for f in font_manager.fontManager.ttflist)


def test_the_report_path_imports_neither_aiogram_nor_matplotlib_until_a_chart_is_asked_for() -> None:
    code = (
        "import sys, bot.cli, bot.services.indicators, bot.services.report_text, bot.services.chart;"
        "print(sorted(m for m in ('aiogram', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
