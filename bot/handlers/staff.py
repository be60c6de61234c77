"""The staff group: /install, call outcomes on escalations, notes as replies to them."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, Update

from bot.delivery.outbox import Outbox
from bot.services.staff import StaffAction, StaffDesk


def _action(
    update: Update, chat_id: int, user_id: int, name: str, message_id: int | None = None, language: str | None = None
) -> StaffAction:
    return StaffAction(update.update_id, chat_id, user_id, name, message_id, language)


async def on_install(
    message: Message, command: CommandObject, event_update: Update, staff: StaffDesk, outbox: Outbox
) -> None:
    user = message.from_user
    if user is None:
        return
    action = _action(event_update, message.chat.id, user.id, user.full_name, language=user.language_code)
    outcome = await staff.install(action, command.args or "")
    await outbox.deliver(outcome.outbox_ids)


async def on_call_outcome(query: CallbackQuery, event_update: Update, staff: StaffDesk, outbox: Outbox) -> None:
    _, followup_id, result = ((query.data or "") + "::").split(":")[:3]
    chat_id = query.message.chat.id if query.message else query.from_user.id
    message_id = query.message.message_id if query.message else None
    action = _action(event_update, chat_id, query.from_user.id, query.from_user.full_name, message_id)
    if not followup_id.isdigit():
        await query.answer()
        return
    outcome = await staff.record_call(action, int(followup_id), result)
    await query.answer(outcome.callback_text)
    await outbox.deliver(outcome.outbox_ids)


async def on_note(message: Message, event_update: Update, staff: StaffDesk, outbox: Outbox) -> None:
    user, replied = message.from_user, message.reply_to_message
    if user is None or replied is None or message.text is None:
        return
    action = _action(event_update, message.chat.id, user.id, user.full_name, message.message_id)
    outcome = await staff.add_note(action, replied.message_id, message.text)
    if outcome is not None:
        await outbox.deliver(outcome.outbox_ids)


def make_router() -> Router:
    router = Router(name="staff")
    router.message.register(on_install, Command("install"))
    router.callback_query.register(on_call_outcome, F.data.startswith("st:"))
    router.message.register(on_note, F.chat.type.in_({"group", "supergroup"}), F.reply_to_message, F.text)
    return router
