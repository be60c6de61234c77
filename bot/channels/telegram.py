"""Telegram delivery through aiogram, within Telegram's limits.

Limits (Bot API FAQ): about 30 messages a second overall, one a second per chat,
20 a minute per group. aiolimiter holds us under them; a 429 that still comes
(another instance, a stricter server) pauses for `retry_after` and sends again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove
from aiolimiter import AsyncLimiter

from bot.delivery.port import Payload, Rejected, TryLater, Unreachable

log = logging.getLogger("posbot.telegram")

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


def markup_from_dict(data: dict[str, Any] | None) -> Markup:
    if not data:
        return None
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.model_validate(data)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.model_validate(data)
    if data.get("remove_keyboard"):
        return ReplyKeyboardRemove()
    return None


class ChatLimiters:
    """One limiter per chat, created on first use: 1/s for people, 20/min for groups."""

    def __init__(self, per_chat_per_second: float = 1.0, per_group_per_minute: float = 20.0) -> None:
        self.per_chat = per_chat_per_second
        self.per_group = per_group_per_minute
        self._limiters: dict[int, AsyncLimiter] = {}

    def for_chat(self, chat_id: int) -> AsyncLimiter:
        limiter = self._limiters.get(chat_id)
        if limiter is None:
            limiter = AsyncLimiter(self.per_group, 60) if chat_id < 0 else AsyncLimiter(self.per_chat, 1)
            self._limiters[chat_id] = limiter
        return limiter


class TelegramMessenger:
    def __init__(
        self,
        bot: Bot,
        per_second: float = 25.0,
        chats: ChatLimiters | None = None,
        max_retries: int = 5,
        request_timeout: int = 15,
    ) -> None:
        self.bot = bot
        # A bucket of two, not of a second's worth: a full bucket spent at once would exceed the
        # limit inside Telegram's one-second window, and a bucket of one loses a sixth of the
        # rate to timer wake-ups (measured: 162/s of 196/s).
        self.overall = AsyncLimiter(2, 2 / per_second)
        self.chats = chats or ChatLimiters()
        self.max_retries = max_retries
        self.request_timeout = request_timeout
        self.retry_after_count = 0

    async def send(self, chat_id: int, payload: Payload) -> int | None:
        failures = 0
        while True:
            async with self.chats.for_chat(chat_id), self.overall:
                try:
                    return await self._call(chat_id, payload)
                except TelegramRetryAfter as exc:
                    self.retry_after_count += 1
                    log.warning("Telegram asked to wait %ss (chat %s)", exc.retry_after, chat_id)
                    wait: float = exc.retry_after
                except TelegramForbiddenError as exc:
                    raise Unreachable(exc.message) from None
                except TelegramBadRequest as exc:
                    raise Rejected(exc.message) from None
                except (TimeoutError, TelegramServerError, TelegramNetworkError) as exc:
                    failures += 1
                    if failures > self.max_retries:
                        raise TryLater(f"{type(exc).__name__}: {exc}") from None
                    wait = min(0.25 * 2**failures, 8.0)
            await asyncio.sleep(wait)

    async def _call(self, chat_id: int, payload: Payload) -> int | None:
        markup = markup_from_dict(payload.get("reply_markup"))
        edit_id = payload.get("edit_message_id")
        # Mentions of people by name (text_mention): the texts go out plain, never parsed as markup.
        entities = payload.get("entities")
        if edit_id is not None:
            try:
                edited = await self.bot.edit_message_text(
                    text=payload["text"],
                    chat_id=chat_id,
                    message_id=edit_id,
                    entities=entities,
                    reply_markup=markup if isinstance(markup, InlineKeyboardMarkup) else None,
                    request_timeout=self.request_timeout,
                )
                # Telegram answers an edit with the edited Message or, for inline messages, with
                # True; aiogram passes either on as is (EditMessageText returns Message | bool).
                # An ok answer is a success whatever its result: the message keeps its id.
                return edited.message_id if isinstance(edited, Message) else int(edit_id)
            except TelegramBadRequest as exc:
                if "message is not modified" in exc.message:
                    return int(edit_id)
                # The message is gone or too old to edit: say it anew instead.
                log.info("could not edit message %s in chat %s: %s", edit_id, chat_id, exc.message)
        sent = await self.bot.send_message(
            chat_id, payload["text"], reply_markup=markup, entities=entities, request_timeout=self.request_timeout
        )
        return sent.message_id
