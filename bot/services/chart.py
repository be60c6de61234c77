"""The report's chart, one PNG: satisfaction by week, timeliness against its target, faults by category.

matplotlib (Agg, no display) is imported only when a chart is drawn. Chinese labels need a font with
CJK glyphs, which a fresh machine often lacks: the chart brings its own, Noto Sans CJK SC from the
`mplfonts` package (installed with posbot, read from its package folder, no download and no system
font step), registered with matplotlib's font manager on first use.
"""

from __future__ import annotations

import importlib.util
import io
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.i18n import Translator
from bot.services.indicators import Report
from bot.services.report_text import key_text

CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"
CJK_FONT_NAME = "Noto Sans CJK SC"
FAULT_BARS = 10


class ChartUnavailable(RuntimeError):
    """matplotlib or the CJK font is not installed."""


def cjk_font_path() -> Path:
    """The Simplified Chinese font that ships inside the `mplfonts` package (found without importing it)."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise ChartUnavailable("the mplfonts package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / CJK_FONT_FILE
    if not path.is_file():
        raise ChartUnavailable(f"{CJK_FONT_FILE} is missing from the mplfonts package")
    return path


@cache
def _figure_class() -> Any:
    """matplotlib's Figure (no pyplot, so no global state: drawing in a worker thread is safe), with the
    CJK font registered and second in the family list."""
    try:
        import matplotlib
    except ImportError:
        raise ChartUnavailable("matplotlib is not installed") from None
    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    font_manager.fontManager.addfont(str(cjk_font_path()))
    # Latin text in DejaVu Sans (matplotlib's own); every glyph it lacks falls back to the CJK font.
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", CJK_FONT_NAME]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return Figure


def draw(report: Report, t: Translator, zone: ZoneInfo) -> bytes:
    """The chart as PNG bytes."""
    figure = _figure_class()(figsize=(8, 10.5), dpi=100)
    period = report.period
    weeks = report.weeks
    labels = [(w["start"].astimezone(zone) + timedelta(hours=12)).strftime("%m-%d") for w in weeks]
    sat, timely, faults = figure.subplots(3, 1)
    figure.suptitle(t("report.chart.title", first=period.first.isoformat(), last=period.last.isoformat()))
    targets = report.indicators
    _weekly(
        sat,
        t,
        labels,
        [w["satisfaction_rate"] for w in weeks],
        targets["satisfaction_rate"].target,
        "report.chart.satisfaction",
        bars=True,
    )
    _weekly(
        timely,
        t,
        labels,
        [w["timeliness_rate"] for w in weeks],
        targets["timeliness_rate"].target,
        "report.chart.timeliness",
        bars=False,
    )
    shown = report.faults[:FAULT_BARS]
    names = [key_text(t, "category", f["category"]) for f in shown][::-1]
    counts = [f["count"] for f in shown][::-1]
    faults.set_title(t("report.chart.faults"))
    if shown:
        faults.barh(names, counts, color="#d98c3f")
        for y, count in enumerate(counts):
            faults.text(count, y, f" {count}", va="center")
    else:
        faults.text(0.5, 0.5, t("report.no_data"), ha="center", va="center", transform=faults.transAxes)
        faults.set_yticks([])
    faults.set_xlabel(t("report.chart.cases"))
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _weekly(
    axes: Any, t: Translator, labels: list[str], values: list[float | None], target: float, title: str, bars: bool
) -> None:
    axes.set_title(t(title))
    shown = [v * 100 if v is not None else float("nan") for v in values]
    positions = list(range(len(labels)))
    if bars:
        axes.bar(positions, [0 if v != v else v for v in shown], color="#4c8bd6")
    else:
        axes.plot(positions, shown, marker="o", color="#3a9d5d")
    axes.axhline(target * 100, color="#c0392b", linestyle="--", label=t("report.chart.target", value=f"{target:.0%}"))
    axes.set_xticks(positions, labels)
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_ylim(0, 105)
    axes.set_ylabel(t("report.chart.share") + " %")
    axes.set_xlabel(t("report.chart.week"))
    axes.legend(loc="lower right")
