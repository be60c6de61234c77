"""One incoming update, one transaction.

The processed update id, whatever the update changes and every message the bot
will say about it (outbox rows) are written together or not at all. A redelivered
update finds its id taken and does nothing; a second instance that changed the
same rows first makes this one read them again and redo its work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.clock import Clock
from bot.delivery.outcome import Outcome
from bot.delivery.port import Payload
from bot.storage.db import writer_turn
from bot.storage.models import OutboxMessage, ProcessedUpdate, StaffAudit

log = logging.getLogger("posbot.updates")

ATTEMPTS = 5


@dataclass
class UpdateWork:
    """What one update is doing inside its transaction, and what it will say."""

    session: AsyncSession
    now: datetime
    messages: list[OutboxMessage] = field(default_factory=list)
    # Columns every message said here gets: the outbox's lease for replies handed over straight after commit.
    lease: dict[str, Any] = field(default_factory=dict)
    # Rows read ahead for this update: held here so the session's (weak) identity map keeps them.
    loaded: list[object] = field(default_factory=list)
    # Shown on the pressed button (answerCallbackQuery); None for plain messages.
    callback_text: str | None = None
    alert: bool = False  # show callback_text as an alert the presser must dismiss

    def say(self, chat_id: int, payload: Payload, purpose: str = "reply", **columns: Any) -> OutboxMessage:
        """Queue a message; it is sent after the transaction commits, or never if it rolls back.

        A message held for later (`not_before` ahead) is not handed over with the replies: the
        delivery job sends it when its time comes.
        """
        later = columns.get("not_before") is not None and columns["not_before"] > self.now
        message = OutboxMessage(
            chat_id=chat_id,
            payload=payload,
            purpose=purpose,
            status="pending",
            attempts=0,
            created_at=self.now,
            **({**columns} if later else {**self.lease, **columns}),
        )
        self.session.add(message)
        self.messages.append(message)
        return message

    def audit(self, user_id: int, what: str, subject: str, **detail: Any) -> None:
        """Record, in this transaction, who did or tried something sensitive (a refusal, a number revealed)."""
        self.session.add(
            StaffAudit(at=self.now, telegram_user_id=user_id, action=what, subject=subject[:40], detail=detail)
        )


Work = Callable[[UpdateWork], Awaitable[None]]
_HANDING_OVER: ContextVar[bool] = ContextVar("posbot_handing_over", default=False)


@contextmanager
def replies_handed_over() -> Iterator[None]:
    """Inside, an update's messages are written leased to the outbox (`Updates.hand_off`): the caller passes
    the outcome on (`Outbox.pass_on`) at once, and the delivery job leaves them alone while the lease holds."""
    token = _HANDING_OVER.set(True)
    try:
        yield
    finally:
        _HANDING_OVER.reset(token)


# The lease columns for messages an update says, when its outcome will be handed over (Outbox.hand_off_lease).
HandOffLease = Callable[[], dict[str, Any]]


class Updates:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, hand_off: HandOffLease | None = None
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.hand_off = hand_off

    async def run(self, update_id: int | None, work: Work, *, label: object = "") -> Outcome:
        """Do `work` once for this update, in one transaction; retried when another instance got there first."""
        for attempt in range(ATTEMPTS):
            try:
                return await self._once(update_id, work)
            except (StaleDataError, IntegrityError) as exc:
                # Another instance changed the same rows first: read them again and redo.
                log.info("update for %s raced another writer (%s); redoing it", label, type(exc).__name__)
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _once(self, update_id: int | None, work: Work) -> Outcome:
        async with writer_turn(self.sessions.kw.get("bind")), self.sessions() as session:
            try:
                async with session.begin():
                    now = self.clock.now()
                    if update_id is not None:
                        # Written with the update's other rows: a redelivered update fails on it at the
                        # first flush and rolls back whatever it did, so the happy path needs no check first.
                        session.add(ProcessedUpdate(update_id=update_id, processed_at=now))
                    lease = self.hand_off() if _HANDING_OVER.get() and self.hand_off is not None else {}
                    done = UpdateWork(session, now, lease=lease)
                    await work(done)
                    await session.flush()
            except IntegrityError:
                if update_id is not None and await self._already_processed(update_id):
                    log.info("update %s already handled; skipped", update_id)
                    return Outcome(duplicate=True)
                raise
        return Outcome([m.id for m in done.messages], done.callback_text, alert=done.alert, messages=done.messages)

    async def _already_processed(self, update_id: int) -> bool:
        async with self.sessions() as session:
            return await session.get(ProcessedUpdate, update_id) is not None
