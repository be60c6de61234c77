"""The outbox: messages are rows first, written in the transaction that decided to send them.

Delivery claims rows with a lease, sends them in order, and records the result.
A process that dies between claim and send leaves a lease that expires, and the
next tick sends the message; nothing the bot decided to say is lost.

An update's own replies need no claim: its transaction writes them already leased to
this process (`hand_off_lease`), and `pass_on` sends them from memory, right after the
handler returns, one queue per chat (in order within a chat, never behind another
chat's limit). Results are recorded in shared transactions (group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.delivery.outcome import Outcome
from bot.delivery.port import Messenger, Rejected, TryLater, Unreachable
from bot.domain.privacy import scrub_payload
from bot.storage.group_commit import GroupCommit
from bot.storage.models import OutboxMessage

log = logging.getLogger("posbot.outbox")

UnreachableHook = Callable[[OutboxMessage], Awaitable[None]]
# Stops a pressed button's spinner, with a short note or none, as an alert when `show_alert`
# (answerCallbackQuery).
AnswerButton = Callable[..., Awaitable[object]]
MAX_ATTEMPTS = 8


class Outbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        messenger: Messenger,
        clock: Clock,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.sessions = sessions
        self.messenger = messenger
        self.clock = clock
        self.lease = lease
        self.owner = uuid.uuid4().hex[:12]
        # The lease an update's transaction puts on the replies it writes, for `pass_on` to send.
        self.hand_off_owner = f"{self.owner}:0"
        self._claims = itertools.count(1)
        self.on_unreachable: list[UnreachableHook] = []
        self.records = GroupCommit(sessions)
        # One queue per chat with replies to send; a queue and its task go once the chat's replies have.
        self._lanes: dict[int, deque[OutboxMessage]] = {}
        self._lane_tasks: dict[int, asyncio.Task[None]] = {}
        self._answers: set[asyncio.Task[None]] = set()

    def hand_off_lease(self) -> dict[str, Any]:
        """Columns for a reply written in an update's transaction: leased to this process from the start.

        No other deliverer takes it while the lease holds; should the process die first, the lease
        runs out and the delivery job sends it.
        """
        return {"lease_owner": self.hand_off_owner, "lease_until": self.clock.now() + self.lease}

    async def claim(self, ids: Sequence[int] | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Take a lease on up to `limit` due rows and return exactly the rows this call took.

        Choosing the rows and leasing them is one UPDATE, with the lease condition in its WHERE:
        SQLite runs it under its write lock, PostgreSQL skips rows another claim has locked and
        re-checks the condition on the newest version of each row, so of two deliverers looking
        at the same rows only one takes each. Every claim marks its rows with its own token, and
        reads back only those: even two claims of one Outbox (a handler's immediate delivery and
        the delivery job) never both send a row.
        """
        now = self.clock.now()
        due = and_(
            OutboxMessage.status == "pending",
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
            or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
        )
        if ids is not None:
            # Named rows may also be replies this process's updates wrote and have not sent yet.
            handed_off = and_(OutboxMessage.status == "pending", OutboxMessage.lease_owner == self.hand_off_owner)
            due = or_(due, handed_off)
        token = f"{self.owner}:{next(self._claims)}"
        async with self.sessions() as session, session.begin():
            chosen = select(OutboxMessage.id).where(due).order_by(OutboxMessage.id).limit(limit)
            if ids is not None:
                chosen = chosen.where(OutboxMessage.id.in_(list(ids)))
            if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
                chosen = chosen.with_for_update(skip_locked=True)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(chosen), due)
                .values(lease_until=now + self.lease, lease_owner=token)
                .execution_options(synchronize_session=False)
            )
            # Through the pending index: only the few undelivered rows are looked at.
            taken = await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.lease_owner == token)
                .order_by(OutboxMessage.id)
            )
            return list(taken.scalars())

    async def hand_over(self, outcome: Outcome, answer: AnswerButton | None = None) -> int:
        """The one way a handled update's replies leave: answer the pressed button, then send at once.

        Answering the button is best effort (a press answered too late is refused by Telegram);
        the replies are committed already and go out whatever becomes of it.
        """
        if answer is not None:
            try:
                if outcome.alert:
                    await answer(outcome.callback_text, show_alert=True)
                else:
                    await answer(outcome.callback_text)
            except Exception as exc:
                log.info("a button press could not be answered (%s); the replies go out anyway", type(exc).__name__)
        if self._handed_off(outcome):
            sent = 0
            blocked: set[int] = set()
            for message in outcome.messages:
                if message.chat_id in blocked:
                    await self._release(message)
                elif await self._send_handed_off(message):
                    sent += 1
                else:
                    blocked.add(message.chat_id)
            return sent
        return await self.deliver(outcome.outbox_ids)

    def pass_on(self, outcome: Outcome, answer: AnswerButton | None = None) -> None:
        """Like `hand_over`, but the handler does not wait: the replies join their chats' queues.

        Each chat's queue is sent in order by a task of its own, so a chat waiting on its limit
        (the staff group's 20 a minute) holds up nobody else, and no update's handler waits on one.
        """
        if answer is not None:
            self._aside(self.hand_over(Outcome(callback_text=outcome.callback_text, alert=outcome.alert), answer))
        if not self._handed_off(outcome):
            if outcome.outbox_ids:
                self._aside(self.deliver(outcome.outbox_ids))
            return
        for message in outcome.messages:
            lane = self._lanes.get(message.chat_id)
            if lane is None:
                lane = self._lanes[message.chat_id] = deque()
                self._lane_tasks[message.chat_id] = asyncio.create_task(self._run_lane(message.chat_id, lane))
            lane.append(message)

    async def drain(self) -> None:
        """Wait until every passed-on reply has been sent (or left to the delivery job)."""
        while self._lane_tasks or self._answers:
            await asyncio.gather(*self._lane_tasks.values(), *self._answers, return_exceptions=True)

    async def close(self, grace: float = 2.0) -> None:
        """Stop sending, after `grace` seconds for what is queued; what is left is released to the delivery job."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), grace)
        left = [m for lane in self._lanes.values() for m in lane]
        tasks = [*self._lane_tasks.values(), *self._answers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for message in left:  # the next start sends them at once, without waiting out our lease
            await self._release(message)

    def _handed_off(self, outcome: Outcome) -> bool:
        return bool(outcome.messages) and all(m.lease_owner == self.hand_off_owner for m in outcome.messages)

    def _aside(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:  # nothing is lost: the rows stay for the delivery job
                log.exception("sending an update's replies failed")

        task = asyncio.create_task(run())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _run_lane(self, chat_id: int, lane: deque[OutboxMessage]) -> None:
        try:
            while lane:
                message = lane.popleft()
                if not await self._send_handed_off(message):
                    # Keep the chat's messages in order: what follows waits for the delivery job too.
                    while lane:
                        await self._release(lane.popleft())
        except Exception:  # a lane must not die silently: its rows stay for the delivery job
            log.exception("sending the replies for chat %s failed", chat_id)
        finally:
            del self._lane_tasks[chat_id]
            del self._lanes[chat_id]

    async def _send_handed_off(self, message: OutboxMessage) -> bool:
        """Send a reply this process's update wrote (leased to it), renewing the lease if it runs low."""
        now = self.clock.now()
        if message.lease_until is None or message.lease_until - now < self.lease / 2:
            until = now + self.lease
            renewed = await self.records.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.lease_owner == message.lease_owner)
                .values(lease_until=until)
            )
            if not renewed:  # its lease ran out and another deliverer took it
                return False
            message.lease_until = until
        return await self._send_one(message)

    async def deliver(self, ids: Sequence[int] | None = None, limit: int = 100) -> int:
        """Send what is due (only `ids`, when given); returns how many were sent."""
        if ids is not None and not ids:
            return 0
        sent = 0
        blocked_chats: set[int] = set()
        for message in await self.claim(ids, limit):
            if message.chat_id in blocked_chats:
                # Keep a chat's messages in order: an earlier one is waiting, so this one waits too.
                await self._release(message)
                continue
            if message.lease_until is not None and message.lease_until < self.clock.now():
                # Earlier sends took longer than the lease: whoever claimed this since sends it.
                blocked_chats.add(message.chat_id)
                continue
            if await self._send_one(message):
                sent += 1
            else:
                blocked_chats.add(message.chat_id)
        return sent

    async def _send_one(self, message: OutboxMessage) -> bool:
        try:
            message_id = await self.messenger.send(message.chat_id, message.payload)
        except Unreachable as exc:
            await self._finish(message, "failed", error=f"unreachable: {exc}"[:200])
            for hook in self.on_unreachable:
                await hook(message)
            return False
        except Rejected as exc:
            log.error("outbox %s rejected by Telegram: %s", message.id, exc)
            await self._finish(message, "failed", error=f"rejected: {exc}"[:200])
            return True
        except TryLater as exc:
            await self._retry_later(message, exc.retry_after, str(exc))
            return False
        except Exception as exc:  # a transport bug must not stop the queue
            log.exception("outbox %s failed unexpectedly", message.id)
            await self._retry_later(message, 30.0, repr(exc))
            return False
        await self._finish(message, "sent", message_id=message_id)
        return True

    async def _set(self, message: OutboxMessage, **values: object) -> None:
        """Record what became of a message; the lease ends with it.

        Only while our claim still holds the lease: a row whose lease ran out mid-send belongs to
        whoever claimed it since, and its lease must not be ended under them.
        """
        recorded = await self.records.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.lease_owner == message.lease_owner)
            .values(lease_until=None, lease_owner=None, **values)
        )
        if not recorded:
            log.warning("outbox %s: the lease ran out before the result was recorded", message.id)

    async def _finish(
        self, message: OutboxMessage, status: str, message_id: int | None = None, error: str | None = None
    ) -> None:
        # Out (or never going): full phone numbers leave the stored text in the same UPDATE (002 §4.2).
        scrubbed = scrub_payload(message.payload)
        await self._set(
            message,
            status=status,
            message_id=message_id,
            error=error,
            sent_at=self.clock.now() if status == "sent" else None,
            attempts=OutboxMessage.attempts + 1,
            **({"payload": scrubbed} if scrubbed is not None else {}),
        )

    async def _retry_later(self, message: OutboxMessage, seconds: float, error: str) -> None:
        attempts = message.attempts + 1
        delay = timedelta(seconds=max(seconds, 2 ** min(attempts, 8)))
        await self._set(
            message,
            status="failed" if attempts >= MAX_ATTEMPTS else "pending",
            attempts=attempts,
            not_before=self.clock.now() + delay,
            error=error[:200],
        )

    async def _release(self, message: OutboxMessage) -> None:
        await self._set(message)
