"""/report in the staff group (supervisors only) and the weekly report the bot posts by itself."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.app import Core, build_core, build_scheduler
from bot.channels.telegram import TelegramMessenger
from bot.clock import FrozenClock
from bot.services.turn import StaffAction
from bot.storage.models import OutboxMessage, ReportPost, StaffAudit
from tests.conftest import STAFF_CHAT, RecordingMessenger, add_staff, make_settings
from tests.fakes import FakeBotAPI
from tests.telegram_harness import TOKEN, telegram_messenger
from tests.test_report_indicators import seed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BOSS = 810001  # a supervisor
CLERK = 810002  # customer service
PASSER_BY = 810003  # in the group, not staff

_update_ids = iter(range(70_000, 80_000))


def sent(core: Core) -> list[tuple[int, dict[str, Any]]]:
    messenger = core.outbox.messenger
    assert isinstance(messenger, RecordingMessenger)
    return messenger.sent


async def report(core: Core, user: int, args: str = "") -> list[dict[str, Any]]:
    """What the group was sent after `user` typed /report `args`."""
    before = len(sent(core))
    action = StaffAction(next(_update_ids), STAFF_CHAT, user, f"user {user}", 1, "en")
    await core.registry.staff_commands["report"](action, args)
    await core.outbox.deliver()
    return [payload for chat, payload in sent(core)[before:] if chat == STAFF_CHAT]


async def count(core: Core, model: Any) -> int:
    async with core.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_supervisor_gets_the_summary_and_the_chart(core: Core) -> None:
    await seed(core)
    await add_staff(core, BOSS, "supervisor", "Boss")
    said = await report(core, BOSS, "month")
    assert len(said) == 2
    text, chart = said
    # The group's language (zh_CN by default), the last 30 days up to the fixture's Tuesday 24 November.
    assert text["text"].startswith("📊 质量报表 2026-10-26 至 2026-11-24")
    assert "回访及时率" in text["text"] and "目标" in text["text"]
    assert chart["text"] == "📈 2026-10-26 至 2026-11-24"
    (photo,) = chart["media"]
    assert photo["type"] == "photo"
    assert base64.b64decode(photo["upload"]).startswith(PNG_SIGNATURE)
    # A week is the default.
    week = await report(core, BOSS)
    assert week[0]["text"].startswith("📊 质量报表 2026-11-18 至 2026-11-24")


async def test_staff_who_are_not_supervisors_and_strangers_are_refused_and_nothing_is_sent(core: Core) -> None:
    await seed(core)
    await add_staff(core, CLERK, "service", "Clerk")
    outbox_before = await count(core, OutboxMessage)
    assert [p["text"] for p in await report(core, CLERK, "week")] == ["Only a supervisor can do this."]
    assert [p["text"] for p in await report(core, PASSER_BY)] == ["Only staff can do this."]
    # Only the two refusals were queued: no summary, no chart.
    assert await count(core, OutboxMessage) == outbox_before + 2
    async with core.sessions() as session:
        audited = (await session.execute(select(StaffAudit.telegram_user_id, StaffAudit.detail))).all()
    assert {(user, detail["reason"]) for user, detail in audited} == {
        (CLERK, "not_supervisor"),
        (PASSER_BY, "not_staff"),
    }


async def test_a_bad_period_gets_the_usage(core: Core) -> None:
    await add_staff(core, BOSS, "supervisor", "Boss")
    said = await report(core, BOSS, "year")
    assert [p["text"] for p in said] == ["/report [week|month]：最近 7 天或 30 天的质量指标，附图表。"]


async def test_the_weekly_report_is_posted_once_even_by_two_instances(database_url: str) -> None:
    """Two bot instances on one database run the Monday job at the same moment: one post."""
    monday = FrozenClock(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai
    first = await build_core(make_settings(database_url), RecordingMessenger(), monday)
    second = await build_core(make_settings(database_url), RecordingMessenger(), monday, migrate=False)
    try:
        assert first.reports is not None and second.reports is not None
        results = await asyncio.gather(first.reports.post_weekly(), second.reports.post_weekly())
        assert sorted(results) == [False, True]
        assert await first.reports.post_weekly() is False  # and again, later that morning
        for core in (first, second):
            await core.outbox.deliver()
        posts = [p for core in (first, second) for chat, p in sent(core) if chat == STAFF_CHAT]
        assert len(posts) == 2  # the summary and the chart
        assert posts[0]["text"].startswith("每周报表（每周自动发送）。\n\n📊 质量报表 2026-11-23 至 2026-11-29")
        assert "media" in posts[1]
        async with first.sessions() as session:
            stamps = (await session.execute(select(ReportPost.kind, ReportPost.period_start))).all()
        assert stamps == [("weekly", "2026-11-23")]
        # The next Monday is another week.
        monday.advance(timedelta(days=7))
        assert await second.reports.post_weekly() is True
    finally:
        await first.close()
        await second.close()


async def test_the_weekly_job_runs_on_monday_at_nine_in_the_configured_zone(core: Core) -> None:
    scheduler = build_scheduler(core)
    job = scheduler.get_job("weekly_report")
    assert job is not None
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "9", "0")
    assert str(job.trigger.timezone) == "Asia/Shanghai"


async def test_the_chart_is_uploaded_to_telegram_as_a_photo() -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        api.add_group(STAFF_CHAT, title="Staff", members=[])
        async with telegram_messenger(api) as telegram:
            assert isinstance(telegram, TelegramMessenger)
            png = _tiny_chart()
            upload = {"type": "photo", "upload": base64.b64encode(png).decode(), "filename": "report.png"}
            message_id = await telegram.send(STAFF_CHAT, {"text": "📈 2026-11-23 – 2026-11-29", "media": [upload]})
        (photo,) = api.sent(STAFF_CHAT)
        assert photo.method == "sendPhoto" and photo.kind == "photo"
        assert photo.message_id == message_id and photo.text == "📈 2026-11-23 – 2026-11-29"
        assert photo.photo is not None and photo.photo[-1]["width"] == 2


def _tiny_chart() -> bytes:
    """A real 2x1 PNG, as matplotlib would write one."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2, 1), "white").save(out, format="PNG")
    return out.getvalue()


async def test_the_terminal_chat_saves_the_chart_and_prints_where(tmp_path: Any, monkeypatch: Any) -> None:
    import io
    import tempfile

    from bot.channels.terminal import TerminalMessenger

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = io.StringIO()
    png = _tiny_chart()
    upload = {"type": "photo", "upload": base64.b64encode(png).decode(), "filename": "report-2026-11-23.png"}
    await TerminalMessenger(user_chat_id=1, out=out, staff_prefix="[staff]").send(
        STAFF_CHAT, {"text": "📈 2026-11-23 – 2026-11-29", "media": [upload]}
    )
    saved = tmp_path / "posbot" / "report-2026-11-23.png"
    assert saved.read_bytes() == png
    assert f"[staff] 📎 {saved}" in out.getvalue()
