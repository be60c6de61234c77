"""The staff group: the staff commands and buttons the capabilities registered, and notes as replies.

Which commands and buttons exist is read from the registry; who may use them is
the staff desk's decision, not this router's.
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, Update

from bot.delivery.callbacks import unpack
from bot.delivery.outbox import Outbox
from bot.services.registry import Registry
from bot.services.team import Team
from bot.services.turn import StaffAction
from bot.services.updates import replies_handed_over


def _action(
    update: Update, chat_id: int, user: Any, message_id: int | None = None, message: Message | None = None
) -> StaffAction:
    replied = message.reply_to_message if message is not None else None
    author = replied.from_user if replied is not None else None
    return StaffAction(
        update.update_id,
        chat_id,
        user.id,
        user.full_name,
        message_id,
        user.language_code,
        reply_to_user_id=author.id if author is not None and not author.is_bot else None,
        reply_to_user_name=author.full_name if author is not None else None,
        reply_to_message_id=replied.message_id if replied is not None else None,
        private=message is not None and message.chat.type == "private",
    )


def make_router(registry: Registry) -> Router:
    router = Router(name="staff")

    async def on_command(message: Message, command: CommandObject, event_update: Update, outbox: Outbox) -> None:
        if message.from_user is None:
            return
        handler = registry.staff_commands[command.command.lower()]
        action = _action(event_update, message.chat.id, message.from_user, message.message_id, message)
        with replies_handed_over():
            outcome = await handler(action, command.args or "")
        outbox.pass_on(outcome)

    def staff_button(query: CallbackQuery) -> dict[str, Any] | bool:
        """Only presses whose data decodes to a staff button reach `on_button`, decoded."""
        button = unpack(query.data)
        return {"button": button} if type(button) in registry.staff_buttons else False

    async def on_button(query: CallbackQuery, button: Any, event_update: Update, outbox: Outbox) -> None:
        chat_id = query.message.chat.id if query.message else query.from_user.id
        message_id = query.message.message_id if query.message else None
        action = _action(event_update, chat_id, query.from_user, message_id)
        with replies_handed_over():
            outcome = await registry.staff_buttons[type(button)](action, button)
        outbox.pass_on(outcome, query.answer)

    async def on_reply(message: Message, event_update: Update, team: Team, outbox: Outbox) -> None:
        user, replied = message.from_user, message.reply_to_message
        if user is None or replied is None or message.text is None:
            return
        action = _action(event_update, message.chat.id, user, message.message_id, message)
        with replies_handed_over():
            outcome = await team.reply(action, message.text)
        if outcome is not None:
            outbox.pass_on(outcome)

    if registry.staff_commands:
        router.message.register(on_command, Command(*registry.staff_commands, ignore_case=True))
    router.callback_query.register(on_button, staff_button)
    router.message.register(on_reply, F.chat.type.in_({"group", "supergroup"}), F.reply_to_message, F.text)
    return router
