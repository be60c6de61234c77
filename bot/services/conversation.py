"""A merchant's update, routed: to a command, a button, the open dialogue or whoever takes the input.

Every update is one transaction (`bot/services/updates.py`). What answers it is
whatever a capability registered (`bot/services/registry.py`); this module only
finds the conversation, decodes buttons and routes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.delivery.callbacks import unpack
from bot.delivery.outcome import Outcome
from bot.i18n import Translator, locale_for
from bot.services.registry import Registry
from bot.services.turn import Incoming, StaffChat, Turn
from bot.services.updates import Updates, UpdateWork
from bot.storage.models import Conversation, Submission

log = logging.getLogger("posbot.conversation")


class ConversationService:
    def __init__(
        self,
        updates: Updates,
        registry: Registry,
        *,
        default_locale: str = "zh_CN",
        staff: StaffChat,
        zone: ZoneInfo,
    ) -> None:
        self.updates = updates
        self.registry = registry
        self.default_locale = default_locale
        self.staff = staff
        self.zone = zone
        # Keeps one user's updates in arrival order inside this process (the revision check keeps
        # them consistent across processes); a lock nobody holds or waits for is dropped.
        self._user_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def handle(self, incoming: Incoming) -> Outcome:
        lock = self._user_locks.get(incoming.user_id)
        if lock is None:
            lock = self._user_locks[incoming.user_id] = asyncio.Lock()
        async with lock:

            async def work(done: UpdateWork) -> None:
                await self._route(await self._turn(done, incoming))

            return await self.updates.run(incoming.update_id, work, label=f"user {incoming.user_id}")

    async def _turn(self, work: UpdateWork, incoming: Incoming) -> Turn:
        conversation = await self._conversation(work, incoming)
        t = Translator(conversation.locale, self.default_locale)
        return Turn(work, conversation, incoming, t, self.zone, self.staff)

    async def _conversation(self, work: UpdateWork, incoming: Incoming) -> Conversation:
        session = work.session
        now = self.updates.clock.now()
        # The open dialogue's submission in the same query: a step reads it from the session, not again.
        row = (
            await session.execute(
                select(Conversation, Submission)
                .outerjoin(Submission, Submission.id == Conversation.submission_id)
                .where(Conversation.telegram_user_id == incoming.user_id)
            )
        ).first()
        conversation = row[0] if row is not None else None
        if row is not None and row[1] is not None:
            work.loaded.append(row[1])
        if conversation is None:
            conversation = Conversation(
                telegram_user_id=incoming.user_id,
                chat_id=incoming.chat_id,
                locale=locale_for(incoming.language_code, self.default_locale),
                locale_chosen=False,
                updated_at=now,
            )
            session.add(conversation)
            await session.flush()
        elif not conversation.locale_chosen and incoming.language_code:
            conversation.locale = locale_for(incoming.language_code, self.default_locale)
        conversation.updated_at = now
        return conversation

    async def _route(self, turn: Turn) -> None:
        incoming = turn.incoming
        if incoming.kind == "command":
            command = self.registry.commands.get(incoming.command)
            if command is None:
                turn.say_text("error.unknown_command")
            else:
                await command(turn)
            return
        if incoming.kind == "button":
            data = unpack(incoming.data)
            button = self.registry.buttons.get(type(data)) if data is not None else None
            if button is None:
                log.info("user %s pressed a button that does not decode", incoming.user_id)
                turn.callback_text = turn.t("error.invalid_button")
            else:
                await button(turn, data)
            return
        for taker in self.registry.inputs:
            if await taker(turn):
                return
        turn.say_text("error.not_in_dialogue")
