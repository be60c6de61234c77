"""Wiring: database, forms, services, outbox, scheduler; then Telegram (polling or webhook) or the terminal."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import TextIO

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.base import Messenger
from bot.channels.telegram import TelegramMessenger
from bot.channels.terminal import TerminalChat, TerminalMessenger
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.dialogs.loader import FormRegistry, load_forms
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy, load_policy
from bot.handlers import errors, merchant, staff
from bot.i18n import Translator
from bot.scheduling.followups import FollowUpDispatcher
from bot.scheduling.outbox import Outbox
from bot.scheduling.periodic import catch_up, plan_key_accounts, plan_routine, recompute_estimated_followups
from bot.services.conversation import ConversationService, sweep_abandoned
from bot.services.followups import FollowUpSurveys, plan_after_resolution
from bot.services.merchants import MerchantIdentity
from bot.services.repair import RepairReports
from bot.services.staff import StaffDesk
from bot.storage.db import create_engine, session_factory, upgrade_async

log = logging.getLogger("posbot")

# A fake or self-hosted Bot API answers fast; the real one long-polls up to this many seconds.
POLLING_TIMEOUT = 10


@dataclass
class Core:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    forms: FormRegistry
    clock: Clock
    service: ConversationService
    outbox: Outbox
    identity: MerchantIdentity
    repairs: RepairReports
    policy: FollowUpPolicy
    calendar: WorkCalendar
    surveys: FollowUpSurveys
    staff: StaffDesk
    dispatcher: FollowUpDispatcher

    async def close(self) -> None:
        await self.engine.dispose()


async def build_core(
    settings: Settings,
    messenger: Messenger,
    clock: Clock | None = None,
    staff_chat_id: int | None = None,
    migrate: bool = True,
) -> Core:
    forms = load_forms()  # a broken form file stops start-up here, naming file, step and reason
    settings.ensure_data_dir()
    if migrate:
        await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    clock = clock or SystemClock()
    service = ConversationService(
        sessions,
        forms,
        clock,
        default_locale=settings.default_locale,
        staff_chat_id=staff_chat_id if staff_chat_id is not None else settings.staff_chat_id,
        abandon_after=settings.abandon_after,
        zone=settings.zone,
    )
    identity = MerchantIdentity(service)
    repairs = RepairReports(service)
    policy = load_policy(settings.followup_policy)
    calendar = WorkCalendar.from_policy(policy)
    repairs.on_resolved.append(plan_after_resolution(service, policy, calendar))
    surveys = FollowUpSurveys(service, policy, calendar)
    outbox = Outbox(sessions, messenger, clock)
    staff_chat = service.staff_chat_id
    desk = StaffDesk(
        sessions,
        clock,
        policy,
        calendar,
        staff_chat_id=staff_chat,
        admin_ids=settings.admin_ids,
        locale=settings.default_locale,
        zone=settings.zone,
    )
    dispatcher = FollowUpDispatcher(
        sessions,
        messenger,
        clock,
        policy,
        calendar,
        staff_chat_id=staff_chat,
        default_locale=settings.default_locale,
        zone=settings.zone,
        lease=timedelta(seconds=settings.followup_lease_seconds),
    )
    outbox.on_unreachable.append(dispatcher.on_unreachable)
    core = Core(
        settings,
        engine,
        sessions,
        forms,
        clock,
        service,
        outbox,
        identity,
        repairs,
        policy,
        calendar,
        surveys,
        desk,
        dispatcher,
    )
    async with sessions() as session, session.begin():
        await recompute_estimated_followups(session, policy, calendar)
    await catch_up(sessions, policy, calendar, clock)
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
        id="key_accounts",
        coalesce=True,
        misfire_grace_time=None,
    )
    scheduler.add_job(
        sweep_abandoned,
        "interval",
        minutes=10,
        args=[core.service, core.outbox],
        id="abandoned",
        max_instances=1,
        coalesce=True,
    )
    return scheduler


async def dispatch_due(core: Core) -> None:
    """One scheduler tick: due follow-ups, reminders, escalations, then whatever the outbox holds."""
    await core.dispatcher.tick()
    await core.outbox.deliver()


def make_bot(settings: Settings) -> Bot:
    assert settings.bot_token is not None
    session = None
    if settings.telegram_api_base:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(settings.bot_token.get_secret_value(), session=session)


def make_dispatcher(core: Core) -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher["service"] = core.service
    dispatcher["outbox"] = core.outbox
    dispatcher["default_locale"] = core.settings.default_locale
    dispatcher["staff"] = core.staff
    # Staff first: /install and the group's buttons; merchants' private chats after.
    dispatcher.include_routers(staff.make_router(), merchant.make_router(), errors.make_router())
    return dispatcher


async def set_commands(bot: Bot) -> None:
    for locale, language in (("zh_CN", None), ("en", "en"), ("zh_CN", "zh")):
        t = Translator(locale)
        commands = [
            BotCommand(command=c, description=t(f"commands.{c}"))
            for c in ("repair", "status", "cancel", "language", "help")
        ]
        await bot.set_my_commands(commands, language_code=language)


async def run_telegram(settings: Settings, clock: Clock | None = None) -> None:
    if settings.staff_chat_id is None:
        log.warning("STAFF_CHAT_ID is not set: staff notifications stay undelivered")
    bot = make_bot(settings)
    core = await build_core(settings, TelegramMessenger(bot, per_second=settings.telegram_rate_per_second), clock)
    dispatcher = make_dispatcher(core)
    scheduler = build_scheduler(core)
    scheduler.start()
    try:
        me = await bot.get_me()
        log.info("bot @%s started", me.username)
        await set_commands(bot)
        await core.outbox.deliver()  # whatever an earlier run decided to say and did not
        if settings.webhook_url:
            await _serve_webhook(settings, bot, dispatcher)
        else:
            await bot.delete_webhook()
            await dispatcher.start_polling(
                bot,
                polling_timeout=POLLING_TIMEOUT,
                allowed_updates=dispatcher.resolve_used_update_types(),
                handle_signals=True,
            )
    finally:
        scheduler.shutdown(wait=False)
        await bot.session.close()
        await core.close()


async def _serve_webhook(settings: Settings, bot: Bot, dispatcher: Dispatcher) -> None:
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    # Without a configured secret, make one for this run: only Telegram then knows it.
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    app = web.Application()
    path = "/" + settings.webhook_url.split("://", 1)[1].partition("/")[2] if settings.webhook_url else "/"
    SimpleRequestHandler(dispatcher, bot, secret_token=secret).register(app, path=path)
    setup_application(app, dispatcher, bot=bot)
    host, _, port = settings.webhook_listen.rpartition(":")
    runner = web.AppRunner(app)
    await runner.setup()
    # Listen first, then tell Telegram where to post: no update arrives before we can take it.
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    await bot.set_webhook(
        settings.webhook_url or "", secret_token=secret, allowed_updates=dispatcher.resolve_used_update_types()
    )
    log.info("listening for webhook calls on %s%s", settings.webhook_listen, path)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def run_terminal(settings: Settings, source: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    t = Translator(settings.default_locale)
    user = settings.terminal_user_id
    # The terminal shows the staff chat's messages too, marked, so the whole path can be seen.
    staff_chat = settings.staff_chat_id if settings.staff_chat_id is not None else -user
    messenger = TerminalMessenger(user_chat_id=user, out=out, staff_prefix=t("terminal.staff_prefix"))
    core = await build_core(settings, messenger, staff_chat_id=staff_chat)
    # Only this chat's own messages are printed: rows queued for Telegram chats by a Telegram
    # run on the same database stay queued for it.
    scheduler = build_scheduler(core, deliver_outbox=False)
    scheduler.start()
    try:
        chat = TerminalChat(core.service, core.outbox, messenger, user, settings.default_locale)
        await chat.run(source)
    finally:
        scheduler.shutdown(wait=False)
        await core.close()
