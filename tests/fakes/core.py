"""What every part of the fake shares: who the bot is, the clock, the log of the calls answered, and the
waiters tests park on until something happens (re-checked on every change; no polling loop anywhere).

The fake is one object, FakeBotAPI, put together from one mixin per concern (chats, messages, files,
limits and faults, updates, webhook, observing). Each mixin keeps its own state, set up in a cooperative
``__init__(**options)``, and builds only on the mixins it names as bases.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.wire import JSON, Via


@dataclass(slots=True)
class Call:
    """One request the fake answered (or dropped: status 499 means the client left before the answer)."""

    method: str
    params: JSON
    status: int
    description: str | None = None
    result: Any = None
    at: float = 0.0
    via: Via = "http"

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Waiter:
    predicate: Callable[[], bool]
    future: asyncio.Future[None]
    error: BaseException | None = None


class MethodCounts(Counter[str]):
    """Calls per method under Telegram's spelling ("sendMessage"); any spelling finds them, as method
    names are case-insensitive on Telegram."""

    def __missing__(self, key: str) -> int:
        wanted = key.lower()
        return sum(count for name, count in self.items() if name.lower() == wanted)

    def add(self, method: str) -> None:
        self[method] = self.get(method, 0) + 1  # get(), not [], so other spellings are not summed in


class FakeCore:
    """The bot's identity, the clock, the call log and the waiters."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_username: str = "posbot_test_bot",
        bot_first_name: str = "posbot",
        privacy_mode: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        bot_id, colon, secret = token.partition(":")
        if not (bot_id.isdigit() and colon and secret):
            raise ValueError("a bot token looks like '123456:secret'")
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        # With privacy mode on (Telegram's default) a bot that is not a group admin sees only commands,
        # replies to its own messages and @mentions in groups.
        self.privacy_mode = privacy_mode
        self.clock = clock
        self.method_counts = MethodCounts()
        self._calls: list[Call] = []
        self._waiters: list[Waiter] = []
        self._closing = asyncio.Event()  # set while the server stops: every pause ends at once
        self._bot_user_json: JSON | None = None

    def _bot_user(self) -> JSON:
        user = self._bot_user_json
        if user is None or user["username"] != self.bot_username or user["first_name"] != self.bot_first_name:
            user = self._bot_user_json = {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": self.bot_first_name,
                "username": self.bot_username,
            }
        return user

    def _now(self) -> int:
        return int(self.clock())

    def _record(self, call: Call) -> None:
        self._calls.append(call)
        self._changed()

    def _changed(self) -> None:
        """Something happened: re-check what the tests wait for (no polling loop anywhere)."""
        for waiter in self._waiters:
            if not waiter.future.done() and holds(waiter):
                waiter.future.set_result(None)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but end at once when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)


def holds(waiter: Waiter) -> bool:
    try:
        return bool(waiter.predicate())
    except Exception as error:  # a condition over state not there yet (empty list...) is simply not true yet
        waiter.error = error
        return False


def describe(predicate: Callable[[], bool]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
