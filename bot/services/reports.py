"""Reports in the staff group: `/report [week|month]` for supervisors, and the weekly report posted by itself.

The answer is the text summary (`report_text`) and the chart (`chart`) as a photo uploaded with it. The
chart's PNG travels in the outbox row (base64, `media: [{"type": "photo", "upload": ...}]`), so a
restart or another instance sends exactly what was decided. "reports" is one of the policy's
`[desk] supervisor_only` permissions: drop it there and every staff member may ask.

The weekly post (an APScheduler cron, `[report.weekly]`, Monday 09:00 by default) covers last Monday
to Sunday. Its `report_posts` row is written in the same transaction as its outbox rows, under a
unique (kind, period) key: of two instances running the job, one posts and the other finds the row.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.delivery.port import Payload
from bot.domain.followup_policy import FollowUpPolicy
from bot.i18n import Translator
from bot.services.indicators import Period, Report, period_report
from bot.services.registry import Registry
from bot.services.render import text_payload
from bot.services.report_text import render
from bot.services.team import Team
from bot.services.turn import Member, StaffAction
from bot.services.updates import Updates, UpdateWork
from bot.storage.models import ReportPost

log = logging.getLogger("posbot.reports")

PERIODS = {"week": 7, "month": 30, "周": 7, "月": 30}
TEXT_LIMIT = 4000  # under Telegram's 4096, whatever the breakdowns hold


class Reports:
    def __init__(
        self,
        team: Team,
        updates: Updates,
        policy: FollowUpPolicy,
        *,
        staff_chat_id: int | None,
        locale: str = "zh_CN",
        zone: ZoneInfo,
    ) -> None:
        self.team = team
        self.updates = updates
        self.policy = policy
        self.staff_chat_id = staff_chat_id
        self.t = Translator(locale)
        self.zone = zone

    def register(self, registry: Registry) -> None:
        supervisor = "reports" in self.policy.desk.supervisor_only
        registry.staff_command("report", self.team.command(self.report, supervisor=supervisor))

    # ---- /report [week|month] ------------------------------------------------------------------------

    async def report(self, done: UpdateWork, action: StaffAction, member: Member, args: str) -> None:
        word = args.strip().lower() or "week"
        if word not in PERIODS:
            done.say(action.chat_id, text_payload(self.t("report.usage")), purpose="staff")
            return
        period = Period.last_days(PERIODS[word], self.zone, done.now)
        await self._say(done, action.chat_id, period)

    async def _say(self, done: UpdateWork, chat_id: int, period: Period, intro: str | None = None) -> None:
        found = await period_report(done.session, self.policy, period, weeks=True)
        text = render(found, self.t)
        if intro:
            text = f"{intro}\n\n{text}"
        if len(text) > TEXT_LIMIT:
            text = text[: TEXT_LIMIT - 1] + "…"
        done.say(chat_id, text_payload(text), purpose="staff")
        chart = await self._chart(found)
        if chart is not None:
            done.say(chat_id, chart, purpose="staff")

    async def _chart(self, found: Report) -> Payload | None:
        """The chart as a photo to upload, or None (logged) when it cannot be drawn: the text still goes."""
        from bot.services.chart import ChartUnavailable, draw

        try:
            # Drawing takes a CPU-second: off the event loop, so other chats are not kept waiting.
            png = await asyncio.to_thread(draw, found, self.t, self.zone)
        except ChartUnavailable as exc:
            log.warning("report chart left out: %s", exc)
            return None
        period = found.period
        caption = self.t("report.chart_caption", first=period.first.isoformat(), last=period.last.isoformat())
        upload = {
            "type": "photo",
            "upload": base64.b64encode(png).decode("ascii"),
            "filename": f"report-{period.first.isoformat()}.png",
        }
        return {"text": caption, "media": [upload]}

    # ---- the weekly post -----------------------------------------------------------------------------------

    async def post_weekly(self) -> bool:
        """Last week's report to the staff group, once per week across restarts and instances; True if posted now."""
        if self.staff_chat_id is None:
            return False
        posted: list[bool] = []
        chat_id = self.staff_chat_id

        async def work(done: UpdateWork) -> None:
            period = Period.previous_week(self.zone, done.now)
            key = period.first.isoformat()
            already = await done.session.execute(
                select(ReportPost.id).where(ReportPost.kind == "weekly", ReportPost.period_start == key)
            )
            if already.first() is not None:
                return
            done.session.add(ReportPost(kind="weekly", period_start=key, posted_at=done.now))
            await done.session.flush()  # a second instance stops here (unique key) and finds the row next time
            await self._say(done, chat_id, period, intro=self.t("report.weekly_intro"))
            posted.append(True)

        await self.updates.run(None, work, label="weekly report")
        return bool(posted)
