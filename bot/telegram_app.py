"""Telegram's side of the wiring: the bot, the dispatcher and its routers, polling or the webhook.

Only `posbot run` with a token imports this module, so aiogram's import (seconds on a small machine)
is paid by the process that talks to Telegram and no other.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from contextlib import AsyncExitStack
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.types import BotCommand, User
from aiogram.utils.token import TokenValidationError, validate_token

from bot.app import Core, build_core, build_scheduler, quiet_during_outage
from bot.channels.telegram import TelegramMessenger
from bot.clock import Clock
from bot.config import Settings, StartupError
from bot.handlers import errors, merchant, staff
from bot.handlers.intake import Intake, WebhookIntake
from bot.i18n import Translator

log = logging.getLogger("posbot")

# The merchants' command menu in Telegram, in this order.
MERCHANT_MENU = ("repair", "complaint", "status", "cancel", "language", "help")
# A fake or self-hosted Bot API answers fast; the real one long-polls up to this many seconds.
POLLING_TIMEOUT = 10
# Updates handled at once: one per connection the database pool gives (5, and 10 more under load). More would
# only queue for a connection (and fail after the pool's 30 s wait) while each holds its objects in memory;
# the rest wait at Telegram.
UPDATES_IN_FLIGHT = 15


def make_bot(settings: Settings) -> Bot:
    assert settings.bot_token is not None
    try:
        validate_token(settings.bot_token.get_secret_value())
    except TokenValidationError:
        raise StartupError("startup.token_malformed", exit_code=2) from None
    session = None
    if settings.telegram_api_base:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(settings.bot_token.get_secret_value(), session=session)


def make_dispatcher(core: Core, hold: bool = True) -> Dispatcher:
    """`hold`: updates that meet a database outage are kept and retried (polling); without it they are
    handed back for the webhook to refuse, so that Telegram sends them again."""
    # No FSM: conversation state lives in SQL. aiogram's default in-memory FSM storage would keep a record
    # for every user who ever wrote (its middleware reads the state of each update's user).
    dispatcher = Dispatcher(disable_fsm=True)
    dispatcher.update.outer_middleware(Intake(core.outage, hold=hold, default_locale=core.settings.default_locale))
    dispatcher["service"] = core.service
    dispatcher["outbox"] = core.outbox
    dispatcher["default_locale"] = core.settings.default_locale
    dispatcher["staff"] = core.staff
    dispatcher["team"] = core.team
    # Staff first: their commands and the group's buttons; merchants' private chats after; errors and
    # unclaimed presses last.
    dispatcher.include_routers(staff.make_router(core.registry), merchant.make_router(), errors.make_router())
    return dispatcher


async def set_commands(bot: Bot) -> None:
    """The command menu is a convenience: when the Bot API refuses it, typed commands still work."""
    try:
        for locale, language in (("zh_CN", None), ("en", "en"), ("zh_CN", "zh")):
            t = Translator(locale)
            commands = [BotCommand(command=c, description=t(f"commands.{c}")) for c in MERCHANT_MENU]
            await bot.set_my_commands(commands, language_code=language)
    except AiogramError as exc:
        log.warning("could not set the command menu (%s); typed commands still work", api_reason(exc, bot.token))


async def run_telegram(settings: Settings, clock: Clock | None = None) -> None:
    if settings.staff_chat_id is None:
        log.warning("STAFF_CHAT_ID is not set: staff notifications stay undelivered")
    async with AsyncExitStack() as cleanup:
        bot = make_bot(settings)
        cleanup.push_async_callback(bot.session.close)
        # The one call start-up cannot do without: it proves the token and the Bot API address.
        me = await confirm_bot(bot, settings)
        log.info("bot @%s started", me.username)
        core = await build_core(settings, TelegramMessenger.for_settings(bot, settings), clock)
        cleanup.push_async_callback(core.close)
        dispatcher = make_dispatcher(core, hold=not settings.webhook_url)
        scheduler = build_scheduler(core)
        quiet_during_outage(scheduler, core.outage)
        scheduler.start()
        cleanup.callback(scheduler.shutdown, wait=False)
        # Neither the command menu nor what an earlier run decided to say and did not holds up the first
        # poll: both go out alongside it.
        aside = [asyncio.create_task(set_commands(bot)), asyncio.create_task(core.outbox.deliver())]
        cleanup.push_async_callback(_finish, aside)
        if settings.webhook_url:
            await _serve_webhook(settings, bot, dispatcher)
        else:
            await leave_webhook(bot)
            await dispatcher.start_polling(
                bot,
                polling_timeout=POLLING_TIMEOUT,
                tasks_concurrency_limit=UPDATES_IN_FLIGHT,
                allowed_updates=dispatcher.resolve_used_update_types(),
                handle_signals=True,
            )


async def _finish(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception):
            log.warning("a start-up task failed: %s", type(outcome).__name__)


async def _serve_webhook(settings: Settings, bot: Bot, dispatcher: Dispatcher) -> None:
    from aiogram.webhook.aiohttp_server import setup_application
    from aiohttp import web

    # Without a configured secret, make one for this run: only Telegram then knows it.
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    app = web.Application()
    path = "/" + settings.webhook_url.split("://", 1)[1].partition("/")[2] if settings.webhook_url else "/"
    # Handled before it is answered: an update the database could not take is refused (503) and sent again.
    WebhookIntake(dispatcher, bot, secret_token=secret).register(app, path=path)
    setup_application(app, dispatcher, bot=bot)
    host, _, port = settings.webhook_listen.rpartition(":")
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        # Listen first, then tell Telegram where to post: no update arrives before we can take it.
        try:
            await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        except OSError as exc:
            raise StartupError(
                "startup.webhook_listen", listen=settings.webhook_listen, reason=exc.strerror or exc
            ) from None
        try:
            await bot.set_webhook(
                settings.webhook_url or "", secret_token=secret, allowed_updates=dispatcher.resolve_used_update_types()
            )
        except AiogramError as exc:
            # Without the webhook no update ever arrives: not a run worth keeping up.
            raise StartupError(
                "startup.webhook_refused", url=settings.webhook_url, reason=api_reason(exc, bot.token)
            ) from None
        log.info("listening for webhook calls on %s%s", settings.webhook_listen, path)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# ---- start-up against the Bot API: what must work, and what may fail with a warning ----------------------


def api_reason(exc: BaseException, token: str) -> str:
    """One line on what the Bot API (or the way to it) said; never the token, which URLs carry."""
    if isinstance(exc, TelegramAPIError):
        said = exc.message
    elif isinstance(exc, ClientDecodeError):
        # The body was no Bot API answer (an HTML error page from a proxy, most often): name, not content.
        said = f"{exc.message}: {type(exc.original).__name__}"
    else:
        said = f"{type(exc).__name__}: {exc}"
    line = (said.strip().splitlines() or [type(exc).__name__])[0]
    return line.replace(token, "<BOT_TOKEN>")[:200]


async def confirm_bot(bot: Bot, settings: Settings) -> User:
    """getMe, or a StartupError that says whether the token, the address or the server is at fault."""
    api = settings.telegram_api_base or "https://api.telegram.org"
    try:
        return await bot.me()  # kept: polling asks for it again
    except (TelegramUnauthorizedError, TelegramNotFound) as exc:
        raise StartupError("startup.token_refused", reason=api_reason(exc, bot.token)) from None
    except TelegramNetworkError as exc:
        raise StartupError("startup.api_unreachable", api=api, reason=api_reason(exc, bot.token)) from None
    except AiogramError as exc:
        raise StartupError("startup.api_failed", api=api, reason=api_reason(exc, bot.token)) from None


async def leave_webhook(bot: Bot) -> None:
    """Polling gets nothing (409 Conflict) while a webhook is set, so one must go; a failed deleteWebhook
    matters only when a webhook is really there."""
    try:
        await bot.delete_webhook()
        return
    except AiogramError as exc:
        refused = api_reason(exc, bot.token)
    try:
        info = await bot.get_webhook_info()
    except AiogramError as exc:
        # Cannot tell: most bots have no webhook, and polling reports a conflict on its own if there is one.
        log.warning("could not remove a webhook (%s) nor check for one (%s)", refused, api_reason(exc, bot.token))
        return
    if info.url:
        raise StartupError("startup.webhook_stuck", reason=refused)
    log.warning("deleteWebhook failed (%s), but no webhook is set: polling goes ahead", refused)
