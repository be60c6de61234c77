"""Wiring: database, forms, services, outbox, scheduler, and the terminal chat.

No aiogram here: the terminal and the commands that never talk to Telegram start without it.
Telegram (polling or webhook) is wired in `bot/telegram_app.py`, imported only by `posbot run` with a token.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import wraps
from typing import Any, TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.terminal import TerminalMessenger
from bot.clock import Clock, OffsetClock, SystemClock
from bot.config import Settings
from bot.delivery.outbox import Outbox
from bot.delivery.port import Messenger, bulk_of
from bot.dialogs.loader import FormRegistry, load_forms
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy, load_policy
from bot.handlers.terminal import TerminalChat
from bot.i18n import Translator
from bot.scheduling.followups import FollowUpDispatcher
from bot.scheduling.periodic import catch_up, plan_key_accounts, plan_routine, recompute_estimated_followups
from bot.scheduling.sla import SlaWatcher
from bot.services.calls import CallDesk
from bot.services.cases import CaseDesk
from bot.services.complaint_desk import ComplaintDesk
from bot.services.complaints import Complaints
from bot.services.conversation import ConversationService
from bot.services.desk_commands import DeskCommands
from bot.services.dialogues import Dialogues
from bot.services.enquiries import Enquiries
from bot.services.expiry import sweep_abandoned
from bot.services.findings import Findings
from bot.services.followups import CallTasks, FollowUpSurveys
from bot.services.merchants import MerchantIdentity
from bot.services.preferences import Preferences
from bot.services.registry import Registry
from bot.services.repair import RepairReports
from bot.services.reports import Reports
from bot.services.retention import Retention
from bot.services.staff import StaffDesk
from bot.services.team import Team
from bot.services.turn import StaffChat
from bot.services.updates import Updates
from bot.services.visits import Visits
from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.outage import Outage, unreachable

log = logging.getLogger("posbot")


@dataclass
class Core:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    forms: FormRegistry
    clock: Clock
    registry: Registry
    service: ConversationService
    dialogues: Dialogues
    outbox: Outbox
    repairs: RepairReports
    policy: FollowUpPolicy
    calendar: WorkCalendar
    staff: StaffDesk
    dispatcher: FollowUpDispatcher
    team: Team
    cases: CaseDesk
    calls: CallTasks
    # The database as this process sees it: updates and jobs that meet an outage report here.
    outage: Outage = field(default_factory=Outage)
    reports: Reports | None = None  # /report and the weekly report

    async def close(self) -> None:
        await self.outbox.close()  # replies still queued keep their rows: the delivery job sends them
        await self.engine.dispose()


async def build_core(
    settings: Settings,
    messenger: Messenger,
    clock: Clock | None = None,
    staff_chat_id: int | None = None,
    migrate: bool = True,
) -> Core:
    forms = load_forms()  # a broken form file stops start-up here, naming file, step and reason
    policy = load_policy(settings.followup_policy)
    settings.ensure_data_dir()
    if migrate:
        await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    clock = clock or SystemClock()
    zone = settings.zone
    staff_chat = staff_chat_id if staff_chat_id is not None else settings.staff_chat_id
    calendar = WorkCalendar.from_policy(policy)
    outbox = Outbox(sessions, messenger, clock, lease=timedelta(seconds=settings.outbox_lease_seconds))
    updates = Updates(sessions, clock, hand_off=outbox.hand_off_lease)
    registry = Registry()

    # The capabilities, each registering the commands, buttons and form outcomes it answers.
    dialogues = Dialogues(forms, registry, settings.abandon_after)
    team = Team(updates, settings.admin_ids, settings.default_locale)
    cases = CaseDesk(
        updates, team, policy, calendar, staff_chat_id=staff_chat, locale=settings.default_locale, zone=zone
    )
    repairs = RepairReports(dialogues, cases, zone)
    desk = StaffDesk(updates, team, policy, calendar, locale=settings.default_locale, zone=zone)
    calls = CallTasks(staff_chat, settings.default_locale, zone)
    reports = Reports(team, updates, policy, staff_chat_id=staff_chat, locale=settings.default_locale, zone=zone)
    for capability in (
        team,
        cases,
        ComplaintDesk(cases, dialogues),  # its merchant input (an answer to staff's question) before any other
        Visits(cases),
        dialogues,
        Preferences(dialogues, settings.default_locale),
        MerchantIdentity(dialogues, zone),
        repairs,
        FollowUpSurveys(dialogues, policy, calendar, calls=calls, reopen=cases.reopen),
        desk,
        DeskCommands(team, cases, zone, settings.default_locale),
        CallDesk(team, dialogues, staff_chat_id=staff_chat, locale=settings.default_locale, zone=zone),
        Findings(cases, team, forms, policy, locale=settings.default_locale),
        Complaints(dialogues, cases, zone),
        reports,
        Enquiries(dialogues, cases, locale=settings.default_locale),  # last: its input handler takes any text left
    ):
        capability.register(registry)

    service = ConversationService(
        updates,
        registry,
        default_locale=settings.default_locale,
        staff=StaffChat(staff_chat, Translator(settings.default_locale)),
        zone=zone,
    )
    dispatcher = FollowUpDispatcher(
        sessions,
        bulk_of(messenger),  # follow-ups are bulk: replies to merchants in a dialogue go before them
        clock,
        policy,
        calendar,
        staff_chat_id=staff_chat,
        default_locale=settings.default_locale,
        zone=zone,
        lease=timedelta(seconds=settings.followup_lease_seconds),
    )
    outbox.on_unreachable.append(dispatcher.on_unreachable)
    core = Core(
        settings,
        engine,
        sessions,
        forms,
        clock,
        registry,
        service,
        dialogues,
        outbox,
        repairs,
        policy,
        calendar,
        desk,
        dispatcher,
        team,
        cases,
        calls,
        reports=reports,
    )
    async with sessions() as session, session.begin():
        await recompute_estimated_followups(session, policy, calendar)
    await catch_up(sessions, policy, calendar, clock, calls=calls)
    return core


def build_scheduler(core: Core, deliver_outbox: bool = True) -> AsyncIOScheduler:
    """Interval jobs only read due rows; the schedule itself lives in SQL."""
    scheduler = AsyncIOScheduler(timezone=core.settings.zone)
    if deliver_outbox:
        scheduler.add_job(core.outbox.deliver, "interval", seconds=5, id="outbox", max_instances=1, coalesce=True)
    scheduler.add_job(
        dispatch_due,
        "interval",
        seconds=core.settings.followup_tick_seconds,
        args=[core],
        id="followups",
        max_instances=1,
        coalesce=True,
    )
    # Monthly routine sample and quarterly key-account review; planning is idempotent per period,
    # so every instance may run it.
    scheduler.add_job(
        plan_routine,
        "cron",
        day=1,
        hour=8,
        args=[core.sessions, core.policy, core.calendar, core.clock],
        id="routine",
        coalesce=True,
        misfire_grace_time=None,  # late (a busy or suspended machine) is better than a skipped month
    )
    scheduler.add_job(
        plan_key_accounts,
        "cron",
        month="1,4,7,10",
        day=1,
        hour=8,
        args=[core.sessions, core.policy, core.calendar, core.clock],
        kwargs={"calls": core.calls},
        id="key_accounts",
        coalesce=True,
        misfire_grace_time=None,
    )
    # Warnings before a case's deadline and the supervisors called after it; stamped on the ticket, so said once.
    scheduler.add_job(
        watch_sla,
        "interval",
        minutes=1,
        args=[core, SlaWatcher(core.cases)],
        id="sla",
        max_instances=1,
        coalesce=True,
    )
    weekly = core.policy.report.weekly
    if weekly.enabled and core.reports is not None:
        # Last week's report to the staff group; its stamp row makes it once a week across instances.
        scheduler.add_job(
            post_weekly_report,
            "cron",
            day_of_week=weekly.weekday,
            hour=weekly.at.hour,
            minute=weekly.at.minute,
            args=[core, core.reports],
            id="weekly_report",
            coalesce=True,
            misfire_grace_time=6 * 3600,  # a machine woken late still posts it that morning
        )
    scheduler.add_job(
        sweep_abandoned,
        "interval",
        minutes=10,
        args=[core.service, core.dialogues, core.clock, core.outbox],
        id="abandoned",
        max_instances=1,
        coalesce=True,
    )
    # Personal data kept no longer than the policy's [retention] says; every instance may run it (idempotent).
    retention = core.policy.retention
    scheduler.add_job(
        Retention(core.sessions, core.clock, retention).run_daily,
        "cron",
        hour=retention.daily_at.hour,
        minute=retention.daily_at.minute,
        id="retention",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,  # late is better than a skipped day
    )
    return scheduler


def quiet_during_outage(scheduler: AsyncIOScheduler, outage: Outage) -> None:
    """A job tick that finds the database out of reach is part of the outage's one log line, not a
    traceback each tick; the next tick tries again."""
    for job in scheduler.get_jobs():
        job.modify(func=_guarded(job.func, outage))


def _guarded(job: Callable[..., Awaitable[Any]], outage: Outage) -> Callable[..., Awaitable[None]]:
    @wraps(job)
    async def run(*args: Any, **kwargs: Any) -> None:
        try:
            await job(*args, **kwargs)
        except Exception as error:
            if not unreachable(error):
                raise
            outage.failed(error)
        else:
            outage.recovered()

    return run


async def dispatch_due(core: Core) -> None:
    """One scheduler tick: due follow-ups, reminders, escalations, then whatever the outbox holds."""
    await core.dispatcher.tick()
    await core.outbox.deliver()


async def post_weekly_report(core: Core, reports: Reports) -> None:
    """The weekly report job: queue it (once per week), then send it."""
    if await reports.post_weekly():
        await core.outbox.deliver()


async def watch_sla(core: Core, watcher: SlaWatcher) -> None:
    """One scheduler tick of the SLA watcher, then whatever it said."""
    await watcher.tick()
    await core.outbox.deliver()


async def run_terminal(
    settings: Settings, source: TextIO = sys.stdin, out: TextIO = sys.stdout, clock: Clock | None = None
) -> None:
    t = Translator(settings.default_locale)
    user = settings.terminal_user_id
    # The terminal shows the staff chat's messages too, marked, so the whole path can be seen.
    staff_chat = settings.staff_chat_id if settings.staff_chat_id is not None else -user
    messenger = TerminalMessenger(user_chat_id=user, out=out, staff_prefix=t("terminal.staff_prefix"))
    # This chat's own clock: `/wait 2h` moves it, and everything the core does reads it.
    own_clock = OffsetClock(clock or SystemClock())
    core = await build_core(settings, messenger, own_clock, staff_chat_id=staff_chat)
    # The person at the terminal is an admin here (as ADMIN_IDS are in Telegram), so `/as staff` works.
    core.team.admin_ids = core.team.admin_ids | {user}
    # Only this chat's own messages are printed: rows queued for Telegram chats by a Telegram
    # run on the same database stay queued for it.
    scheduler = build_scheduler(core, deliver_outbox=False)
    scheduler.start()
    watcher = SlaWatcher(core.cases)

    async def due_jobs() -> None:
        await dispatch_due(core)
        await watch_sla(core, watcher)

    try:
        chat = TerminalChat(
            core.service,
            core.outbox,
            messenger,
            user,
            settings.default_locale,
            team=core.team,
            staff_chat_id=staff_chat,
            clock=own_clock,
            due_jobs=due_jobs,
        )
        await chat.run(source)
    finally:
        scheduler.shutdown(wait=False)
        await core.close()
