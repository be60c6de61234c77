"""No update crashes the bot, and no press goes unanswered.

A failed update is logged with its id and the person gets a one-line apology; a
button press that no router took (forged, or from a group the bot does not serve)
is answered "this button is no longer valid".
"""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, ErrorEvent

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


async def on_unclaimed_button(query: CallbackQuery, default_locale: str = "zh_CN") -> None:
    t = Translator(locale_for(query.from_user.language_code, default_locale))
    try:
        await query.answer(t("error.invalid_button"))
    except Exception as exc:  # too old to answer: nothing else to do
        log.info("could not answer an unclaimed button press (%s)", type(exc).__name__)


def make_router() -> Router:
    """Include last: it takes what the other routers left."""
    router = Router(name="errors")
    router.errors.register(on_error)
    router.callback_query.register(on_unclaimed_button)
    return router
