"""Dialogues left untouched too long are closed, and the merchant is told; a repair report among them
reaches staff with its answers (bot/services/enquiries.py). Enquiry texts the merchant never said
Yes or No to are dropped after the same time."""

from __future__ import annotations

from sqlalchemy import select

from bot.clock import Clock
from bot.delivery.outbox import Outbox
from bot.services.conversation import ConversationService
from bot.services.dialogues import TIMEOUT, Dialogues
from bot.services.enquiries import drop_stale_drafts
from bot.services.turn import Incoming
from bot.storage.models import Conversation


async def sweep_abandoned(service: ConversationService, dialogues: Dialogues, clock: Clock, outbox: Outbox) -> int:
    """Close every dialogue older than the abandonment limit; returns how many were closed."""
    cutoff = clock.now() - dialogues.abandon_after
    async with service.updates.sessions() as session, session.begin():
        await drop_stale_drafts(session, cutoff)
    async with service.updates.sessions() as session:
        rows = await session.execute(
            select(Conversation.telegram_user_id, Conversation.chat_id).where(
                Conversation.state.is_not(None), Conversation.updated_at < cutoff
            )
        )
        candidates = list(rows.all())
    closed = 0
    for user_id, chat_id in candidates:
        # Through the same door as a merchant's update: the engine sees the time passed and closes it.
        outcome = await service.handle(Incoming(user_id=user_id, chat_id=chat_id, kind="other", other_kind=TIMEOUT))
        closed += bool(outcome.outbox_ids)
        await outbox.hand_over(outcome)
    return closed
