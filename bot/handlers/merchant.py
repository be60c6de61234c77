"""Merchants in private chats: turn the update into an `Incoming`, hand it to the service, send."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message, Update

from bot.delivery.outbox import Outbox
from bot.services.conversation import ConversationService
from bot.services.turn import Incoming
from bot.services.updates import replies_handed_over


def incoming_from_message(message: Message, update_id: int) -> Incoming:
    user = message.from_user
    user_id = user.id if user else message.chat.id
    base = {
        "user_id": user_id,
        "chat_id": message.chat.id,
        "update_id": update_id,
        "language_code": user.language_code if user else None,
        "first_name": user.first_name if user else None,
    }
    if message.text is not None:
        if message.text.startswith("/"):
            head, _, args = message.text[1:].partition(" ")
            return Incoming(kind="command", command=head.split("@")[0].lower(), args=args, **base)  # type: ignore[arg-type]
        return Incoming(kind="text", text=message.text, **base)  # type: ignore[arg-type]
    if message.photo:
        largest = message.photo[-1]
        return Incoming(kind="file", file_kind="photo", file_id=largest.file_id, **base)  # type: ignore[arg-type]
    if message.document is not None:
        return Incoming(
            kind="file",
            file_kind="document",
            file_id=message.document.file_id,
            file_name=message.document.file_name,
            **base,  # type: ignore[arg-type]
        )
    if message.contact is not None:
        own = message.contact.user_id is not None and message.contact.user_id == user_id
        return Incoming(kind="contact", contact_phone=message.contact.phone_number, contact_is_own=own, **base)  # type: ignore[arg-type]
    return Incoming(kind="other", other_kind=str(message.content_type), **base)  # type: ignore[arg-type]


async def on_message(message: Message, event_update: Update, service: ConversationService, outbox: Outbox) -> None:
    # The replies are committed with the update; they leave on their chat's queue once the handler returns.
    with replies_handed_over():
        outcome = await service.handle(incoming_from_message(message, event_update.update_id))
    outbox.pass_on(outcome)


async def on_button(query: CallbackQuery, event_update: Update, service: ConversationService, outbox: Outbox) -> None:
    chat_id = query.message.chat.id if query.message else query.from_user.id
    incoming = Incoming(
        kind="button",
        user_id=query.from_user.id,
        chat_id=chat_id,
        update_id=event_update.update_id,
        language_code=query.from_user.language_code,
        data=query.data or "",
        message_id=query.message.message_id if query.message else None,
    )
    # Stop the button's spinner (a stale press says so on the button itself), then reply.
    with replies_handed_over():
        outcome = await service.handle(incoming)
    outbox.pass_on(outcome, query.answer)


def make_router() -> Router:
    """A fresh router each time: aiogram attaches a router to one dispatcher only."""
    router = Router(name="merchant")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(on_message)
    router.callback_query.register(on_button)
    return router
