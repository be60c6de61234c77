"""The update queue Telegram keeps for the bot, and getUpdates: a true long poll, confirmation by offset,
allowed_updates, one poller at a time (a newer one ends the older with 409), and redelivery."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.fakes.core import FakeCore
from tests.fakes.wire import JSON, POLL_CONFLICT, WEBHOOK_ACTIVE, BotAPIError, Params

# Telegram leaves these out unless allowed_updates asks for them.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class _Queued:
    update: JSON
    again: bool = False  # a redelivery: handed out once more whatever the offset says

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


class Updates(FakeCore):
    """Updates wait here until getUpdates confirms them or the webhook accepts them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.hidden_updates: list[JSON] = []  # group messages privacy mode kept from the bot
        self.filtered_updates: list[JSON] = []  # updates allowed_updates said the bot does not want
        self._pending: deque[_Queued] = deque()
        self._update_ids = itertools.count(1)
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        # getUpdates requests taken, counted on arrival (a long poll is recorded only once answered): the bot polls
        self.polls = 0
        self._poll_waiter: asyncio.Future[None] | None = None
        # Where updates go: None while the bot polls; set and cleared by setWebhook/deleteWebhook.
        self.webhook_url: str | None = None
        self._webhook_wakeup = asyncio.Event()  # set whenever an update is queued, for the webhook worker

    async def _get_updates(self, params: Params) -> list[JSON]:
        if self.webhook_url is not None:
            raise BotAPIError(409, WEBHOOK_ACTIVE)
        offset = params.integer("offset") or 0
        limit = min(max(params.integer("limit") or 100, 1), 100)
        timeout = min(max(params.number("timeout") or 0.0, 0.0), 50.0)
        if params.has("allowed_updates"):
            allowed = params.json("allowed_updates", "can't parse allowed_updates JSON object")
            self._allowed_updates = [str(kind) for kind in allowed] if isinstance(allowed, list) else None
        self._confirm(offset)
        self.polls += 1
        self._changed()
        # Only one long poll per bot: a newer getUpdates ends the one still waiting, which answers 409.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_poller()
        batch = self._take_updates(limit)
        if batch or timeout == 0 or self._closing.is_set():
            return batch
        await self._wait_for_updates(timeout)
        if generation != self._poll_generation:
            raise BotAPIError(409, POLL_CONFLICT)
        if self.webhook_url is not None:
            return []  # updates go to the webhook now; handing them out here too would deliver them twice
        return self._take_updates(limit)

    def _confirm(self, offset: int) -> None:
        """An update is confirmed, and forgotten, once getUpdates asks for an offset above its id."""
        if offset > 0:
            if any(not q.again and q.update_id < offset for q in self._pending):
                self._pending = deque(q for q in self._pending if q.again or q.update_id >= offset)
        elif offset < 0:
            # A negative offset keeps the last -offset updates and forgets the rest.
            self._pending = deque(list(self._pending)[offset:])

    def _take_updates(self, limit: int) -> list[JSON]:
        again = [q for q in self._pending if q.again][:limit]
        if again:
            # A redelivery is handed out once; no offset could ever confirm it, its id being old.
            taken = {id(q) for q in again}
            self._pending = deque(q for q in self._pending if id(q) not in taken)
        fresh = list(itertools.islice((q for q in self._pending if not q.again), limit - len(again)))
        return [q.update for q in again + fresh]

    async def _wait_for_updates(self, seconds: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._poll_waiter = waiter
        self._changed()  # a test may be waiting for the poll to park (poll_waiting)
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            pass
        finally:
            if self._poll_waiter is waiter:
                self._poll_waiter = None

    def _wake_poller(self) -> None:
        waiter = self._poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._poll_waiter = None

    def _wants(self, kind: str) -> bool:
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in DEFAULT_EXCLUDED_UPDATES

    def _queue_update(self, kind: str, payload: JSON, visible: bool = True) -> JSON:
        update: JSON = {"update_id": next(self._update_ids), kind: payload}
        if not visible:
            self.hidden_updates.append(update)
        elif not self._wants(kind):
            self.filtered_updates.append(update)
        else:
            self._deliver(_Queued(update))
        return update

    def _deliver(self, queued: _Queued) -> None:
        self._pending.append(queued)
        self._wake_poller()
        self._webhook_wakeup.set()
        self._changed()

    def redeliver(self, update: JSON) -> JSON:
        """The same update again, same update_id, as Telegram does when a confirmation was lost.

        It reaches the bot once more even though the bot already confirmed that id.
        """
        again: JSON = json.loads(json.dumps(update))
        self._deliver(_Queued(again, again=True))
        return again

    @property
    def poll_waiting(self) -> bool:
        """A getUpdates long poll is parked, to be answered as soon as an update comes."""
        return self._poll_waiter is not None and not self._poll_waiter.done()

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates Telegram still holds for the bot (not yet confirmed, or not yet accepted by the webhook)."""
        return [q.update for q in self._pending]
