"""No update crashes the bot: log it with the update id, apologise to the person in one line."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.types import ErrorEvent

from bot.i18n import Translator, locale_for

log = logging.getLogger("posbot.errors")


async def on_error(event: ErrorEvent, bot: Bot, default_locale: str = "zh_CN") -> bool:
    update = event.update
    log.error("update %s failed: %s", update.update_id, type(event.exception).__name__, exc_info=event.exception)
    user = None
    chat_id = None
    if update.message is not None:
        user, chat_id = update.message.from_user, update.message.chat.id
    elif update.callback_query is not None:
        user = update.callback_query.from_user
        message = update.callback_query.message
        chat_id = message.chat.id if message else user.id
    if chat_id is None:
        return True
    t = Translator(locale_for(user.language_code if user else None, default_locale))
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
        await bot.send_message(chat_id, t("error.unexpected"))
    except Exception:  # the apology itself failing must not raise again
        log.warning("could not apologise for update %s", update.update_id)
    return True


def make_router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
