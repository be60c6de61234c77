"""How updates come in: one chat's updates one at a time and in order, and none lost to a database outage.

An update that finds the database out of reach has changed nothing, so it is
tried again: in polling mode it is held here and retried with back-off while
other chats go on (the chat's later updates wait behind it, keeping their order);
in webhook mode the webhook answers 503, so Telegram sends it again. Either way
the chat is told once per outage that answers are delayed (straight through the
Bot API: the outbox lives in the database), and the log says it once. Exactly
once is the processed-updates table's work (`bot/services/updates.py`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.methods import TelegramMethod
from aiogram.types import Chat, TelegramObject, Update, User
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from bot.i18n import Translator, locale_for
from bot.storage.outage import Outage, unreachable

log = logging.getLogger("posbot.intake")

# What the intake returns for an update it could not take now: the webhook answers 503.
DEFERRED = object()
FIRST_RETRY = 0.5  # seconds; doubled on each failure of the same update
LAST_RETRY = 5.0
NOTICE_TIMEOUT = 10.0
# The database came back this often while one update kept failing as if it were out: the update's own
# fault (a statement that breaks its connection, say), so it goes to the error handler after all.
GIVE_UP_AFTER = 3
REMEMBERED = 10_000  # updates the webhook refused, remembered until they come back

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class Intake(BaseMiddleware):
    """An outer middleware on every update (inside aiogram's error middleware, so it sees handlers' errors)."""

    def __init__(self, outage: Outage, *, hold: bool, default_locale: str = "zh_CN") -> None:
        self.outage = outage
        self.hold = hold  # polling: keep and retry; webhook: hand back DEFERRED
        self.default_locale = default_locale
        # Dropped when nobody holds or waits for it, as ConversationService's user locks are.
        self._chats: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        # Update id -> the outage's `recoveries` when the webhook first refused it.
        self._refused: dict[int, int] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat = _chat_of(data)
        if chat is None:
            return await self._take(handler, event, data, None)
        lock = self._chats.get(chat)
        if lock is None:
            lock = self._chats[chat] = asyncio.Lock()
        async with lock:  # FIFO: updates were started in the order they came
            return await self._take(handler, event, data, chat)

    async def _take(self, handler: Handler, event: TelegramObject, data: dict[str, Any], chat: int | None) -> Any:
        update_id = event.update_id if isinstance(event, Update) else -1
        since = self._refused.pop(update_id, None)
        delay = FIRST_RETRY
        while True:
            try:
                # A copy each time: filters and inner middlewares write into it.
                result = await handler(event, dict(data))
            except Exception as error:
                if not unreachable(error):
                    raise
                if since is None:
                    since = self.outage.recoveries
                elif self.outage.recoveries - since >= GIVE_UP_AFTER:
                    log.error("update %s kept failing while the database answered others: not an outage", update_id)
                    raise
                self.outage.failed(error, update_id)
                if chat is not None and self.outage.first_for(chat):
                    await self._tell(data.get("bot"), chat, data.get("event_from_user"))
                if not self.hold:
                    self._remember(update_id, since)
                    return DEFERRED
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY)
                continue
            self.outage.recovered()
            return result

    def _remember(self, update_id: int, since: int) -> None:
        if len(self._refused) >= REMEMBERED:
            del self._refused[next(iter(self._refused))]  # the oldest: Telegram has likely given it up
        self._refused[update_id] = since

    async def _tell(self, bot: Bot | None, chat: int, user: User | None) -> None:
        """Best effort: the chat hears that answers are late, in the language Telegram says the person uses."""
        if bot is None:
            return
        t = Translator(locale_for(user.language_code if user else None, self.default_locale))
        try:
            await asyncio.wait_for(bot.send_message(chat, t("intake.delayed")), timeout=NOTICE_TIMEOUT)
        except Exception as error:
            log.info("could not tell chat %s of the delay (%s)", chat, type(error).__name__)


def _chat_of(data: dict[str, Any]) -> int | None:
    """The chat whose order this update keeps: where it was said, or who pressed an inline button."""
    chat: Chat | None = data.get("event_chat")
    if chat is not None:
        return chat.id
    user: User | None = data.get("event_from_user")
    return user.id if user is not None else None


class WebhookIntake(SimpleRequestHandler):
    """Answers Telegram once the update is handled, never before: 503 while the database is out of reach,
    so that Telegram sends the update again, and 401 without the secret token."""

    def __init__(self, dispatcher: Any, bot: Bot, secret_token: str) -> None:
        super().__init__(dispatcher, bot, handle_in_background=False, secret_token=secret_token)

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            return web.Response(body="Unauthorized", status=401)
        try:
            update = Update.model_validate(await request.json(loads=bot.session.json_loads), context={"bot": bot})
        except (ValueError, ValidationError) as error:
            log.warning("the webhook got a body that is no update (%s)", type(error).__name__)
            return web.Response(status=400, text="not an update")
        result = await self.dispatcher.feed_update(bot, update, **self.data)
        if result is DEFERRED:
            return web.Response(status=503, text="database unavailable; send it again")
        method = result if isinstance(result, TelegramMethod) else None
        return web.Response(body=self._build_response_writer(bot=bot, result=method))
