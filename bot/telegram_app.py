"""Telegram's side of the wiring: the bot, the dispatcher and its routers, polling or the webhook.

Only `posbot run` with a token imports this module, so aiogram's import (seconds on a small machine)
is paid by the process that talks to Telegram and no other.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import Awaitable
from contextlib import AsyncExitStack, suppress
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramAPIError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import BotCommand, Update, User
from aiogram.utils.backoff import Backoff, BackoffConfig
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
# the rest (up to the 100 one getUpdates brings) wait unconfirmed, Telegram keeping them until handled.
UPDATES_IN_FLIGHT = 15
# While an update is being handled every getUpdates answers at once (that update is still unconfirmed, so
# Telegram hands it out again): the poller asks again when one finishes, at most this often, and at the
# latest after REPOLL_WAIT, so that updates of other chats still come in while one handler takes its time.
REPOLL_GAP = 0.1
REPOLL_WAIT = 0.5
# Told to stop, the poller gives the updates in flight this long to finish; the rest Telegram sends again.
STOP_GRACE = 5.0
# getUpdates failing (network, 5xx, 409): waits of 1 s growing to 5 s, as aiogram's own polling does.
POLL_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=5.0, factor=1.3, jitter=0.1)


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
            await Poller(bot, dispatcher).run(handle_signals=True)


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


# ---- polling: an update is confirmed to Telegram only once it is handled -----------------------------------

T = TypeVar("T")


class Poller:
    """getUpdates in a loop, each new update handled in a task, with an offset that never passes an update
    still being handled.

    aiogram's own polling confirms a batch (by asking for the next offset) while its handlers still run, so
    a process killed then loses them. Here the offset is the lowest update id still in flight (or the last
    seen + 1 when none is): a killed process leaves its unfinished updates with Telegram, which hands them
    to the next one, and one that was handled after all is a no-op there (the processed-updates table).
    Telegram hands out at most 100 updates from the offset, so at most 100 are held here; UPDATES_IN_FLIGHT
    of them are handled at once, the others wait for a slot in the order they came. A chat's updates go one
    after another, each asking for a slot only once the chat's earlier one is done (the intake keeps that
    order too): a chat whose update waits out a database outage holds one slot, and the other chats go on.
    """

    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        *,
        timeout: int = POLLING_TIMEOUT,
        in_flight: int = UPDATES_IN_FLIGHT,
        backoff: BackoffConfig = POLL_BACKOFF,
    ) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.timeout = timeout
        self.offset = 0  # every update below it is handled; 0: nothing asked for yet
        self._slots = asyncio.Semaphore(in_flight)
        self._backoff = Backoff(backoff)
        self._running: dict[int, asyncio.Task[None]] = {}
        self._finished: set[int] = set()  # handled here, at or above the offset (so at most 100)
        self._seen = 0  # the highest update id taken
        self._stopping = asyncio.Event()
        self._progress = asyncio.Event()  # an update finished
        self._workflow: dict[str, Any] = {}
        self._last_of_chat: dict[int, asyncio.Task[None]] = {}  # each chat's latest update in flight

    def stop(self) -> None:
        self._stopping.set()

    def _signalled(self, sig: signal.Signals) -> None:
        log.warning("received %s: stopping", sig.name)
        self.stop()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Until stop() (or SIGINT/SIGTERM with `handle_signals`); the dispatcher's startup and shutdown
        hooks run around it, as aiogram's start_polling runs them."""
        bot, dispatcher = self.bot, self.dispatcher
        # What aiogram's start_polling hands the hooks and every update's middlewares and handlers.
        self._workflow = {"dispatcher": dispatcher, "bots": (bot,), **dispatcher.workflow_data}
        self._workflow.pop("bot", None)
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self._signalled, sig)
        try:
            await dispatcher.emit_startup(bot=bot, **self._workflow)
            cancelled = False
            try:
                me = await bot.me()
                log.info("polling for updates as @%s", me.username)
                await self._poll()
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                await self._wind_down(grace=not cancelled)
                log.info("polling stopped")
                await dispatcher.emit_shutdown(bot=bot, **self._workflow)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _next_offset(self) -> int:
        """The lowest update in flight, or the one after the last seen: nothing unhandled is confirmed."""
        waiting = [update_id for update_id in self._running if update_id >= self.offset]
        if waiting:
            self.offset = max(self.offset, min(waiting))
        elif self._seen:
            self.offset = max(self.offset, self._seen + 1)
        self._finished = {update_id for update_id in self._finished if update_id >= self.offset}
        return self.offset

    async def _poll(self) -> None:
        allowed = self.dispatcher.resolve_used_update_types()
        # Longer than the long poll itself, so that a quiet poll is no time-out (as aiogram sets it).
        request_timeout = int(self.bot.session.timeout + self.timeout) if self.bot.session.timeout else None
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            asked = loop.time()
            self._progress.clear()  # an update that finishes from now on moves the offset of the next ask
            try:
                updates = await self._unless_stopped(
                    self.bot.get_updates(
                        offset=self._next_offset() or None,
                        timeout=self.timeout,
                        allowed_updates=allowed,
                        request_timeout=request_timeout,
                    )
                )
            except Exception as error:
                await self._failed(error)
                continue
            if updates is None:
                return
            if self._backoff.counter:
                log.info("getUpdates answers again after %d failures", self._backoff.counter)
                self._backoff.reset()
            for update in updates:
                self._take(update)
            if self._running:
                # Asking now would bring back the same updates at once: first let one finish.
                await self._unless_stopped(self._some_progress())
                await asyncio.sleep(max(0.0, asked + REPOLL_GAP - loop.time()))

    async def _some_progress(self) -> None:
        """Until an update finishes, REPOLL_WAIT at most."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._progress.wait(), REPOLL_WAIT)

    def _take(self, update: Update) -> None:
        update_id = update.update_id
        if update_id in self._running or update_id in self._finished:
            return  # handed out again because not yet confirmed: one task per update
        self._seen = max(self._seen, update_id)
        chat = _chat_of(update)
        before = self._last_of_chat.get(chat) if chat is not None else None
        task = asyncio.create_task(self._handle(update, before))
        self._running[update_id] = task
        if chat is not None:
            self._last_of_chat[chat] = task
            task.add_done_callback(lambda done: self._forget_chat(chat, done))

    def _forget_chat(self, chat: int, task: asyncio.Task[None]) -> None:
        if self._last_of_chat.get(chat) is task:
            del self._last_of_chat[chat]

    async def _handle(self, update: Update, before: asyncio.Task[None] | None) -> None:
        update_id = update.update_id
        try:
            if before is not None:
                # The chat's earlier update first, and without a slot meanwhile: a chat that sent ten
                # messages, or whose first one waits out a database outage, holds one slot, not ten.
                await asyncio.wait({before})
            async with self._slots:
                response = await self.dispatcher.feed_update(self.bot, update, **self._workflow)
                if isinstance(response, TelegramMethod):
                    await self.dispatcher.silent_call_request(self.bot, response)
        except asyncio.CancelledError:
            # Stopping: the update stays in flight, so the offset stays below it and Telegram keeps it.
            raise
        except Exception:
            # The error router answers handlers' errors; this is what got past it. Telegram is not asked
            # for the update again: it would fail the same way.
            log.exception("update %s could not be handled", update_id)
        self._running.pop(update_id, None)
        if update_id >= self.offset:
            self._finished.add(update_id)
        self._progress.set()

    async def _failed(self, error: Exception) -> None:
        delay = next(self._backoff)
        if isinstance(error, TelegramRetryAfter):
            delay = max(delay, float(error.retry_after))
        reason = api_reason(error, self.bot.token)
        if self._backoff.counter == 1:
            if isinstance(error, TelegramConflictError):
                log.error("another bot instance or a webhook takes this bot's updates (%s); retrying", reason)
            else:
                log.warning("getUpdates failed (%s); retrying with growing waits", reason)
        else:
            log.debug("getUpdates failed again (%s); next try in %.1f s", reason, delay)
        await self._unless_stopped(asyncio.sleep(delay))

    async def _unless_stopped(self, work: Awaitable[T]) -> T | None:
        """`work`'s result, or None once stop() is called first (`work` is then cancelled)."""
        job = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({job, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (job, stopped):
                if not pending.done():
                    pending.cancel()
                    with suppress(asyncio.CancelledError, Exception):
                        await pending
        if job.cancelled() or not job.done():
            return None
        return job.result()

    async def _wind_down(self, grace: bool) -> None:
        """Updates in flight get a moment to finish (none when the poller itself is cancelled); the rest are
        cancelled and left to Telegram, which sends them again; the finished ones are confirmed."""
        tasks = list(self._running.values())
        if tasks:
            try:
                if grace:
                    await asyncio.wait(tasks, timeout=STOP_GRACE)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        if grace and (self.offset or self._seen):
            offset = self._next_offset()
            with suppress(Exception):
                # One update at most, none waited for: only the confirmation counts.
                await asyncio.wait_for(self.bot.get_updates(offset=offset, limit=1, timeout=0), STOP_GRACE)


def _chat_of(update: Update) -> int | None:
    """The chat whose updates are handled one after another (the intake's order): where it was said, or who
    pressed the button."""
    context = UserContextMiddleware.resolve_event_context(update)
    if context.chat is not None:
        return context.chat.id
    return context.user.id if context.user is not None else None
