"""Telegram's flood limits (429 with retry_after) and the faults tests inject: failures of a method, now
(fail_next), at random (fail_rate) or for a while (fail_for, an outage); delays that make clients time
out (delay_next, delay_rate); and answers garbled after the call was carried out (garble_next,
garble_rate)."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.core import Call, FakeCore
from tests.fakes.wire import BotAPIError, Params, status_error, too_many_requests


@dataclass
class _Fault:
    status: int
    count: int
    retry_after: int
    description: str | None


@dataclass
class _FaultRate:
    status: int
    probability: float
    rng: random.Random
    retry_after: int
    description: str | None


@dataclass
class _Delay:
    seconds: float
    after_processing: bool


class Limits(FakeCore):
    """Flood limits over a sliding window of the sends that succeeded, and the injected faults."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.rate_limited = 0  # the 429s that came from the flood limits rather than fail_next/fail_rate
        self.dropped = 0  # requests whose client left during an injected delay, never carried out
        self._faults: dict[str, deque[_Fault]] = {}
        self._fault_rates: dict[str, _FaultRate] = {}
        self._delays: dict[str, deque[_Delay]] = {}
        self._delay_rates: dict[str, tuple[float, _Delay, random.Random]] = {}
        self._outages: dict[str, tuple[float, int, int]] = {}  # method or "*": (until, status, retry_after)
        self._garbles: dict[str, int] = {}
        self._garble_rates: dict[str, tuple[float, random.Random]] = {}
        self.garbled = 0  # answers garbled on purpose, each after the call was carried out
        self._global_limit: int | None = None
        self._per_chat_limits = False
        self._send_times: deque[float] = deque()
        self._chat_send_times: dict[int, deque[float]] = {}

    def fail_next(
        self,
        method: str,
        status: int = 429,
        count: int = 1,
        retry_after: int = 1,
        description: str | None = None,
    ) -> None:
        """The next `count` calls of `method` fail with `status` without being carried out. Queued in order."""
        self._faults.setdefault(method.lower(), deque()).append(_Fault(status, count, retry_after, description))

    def fail_rate(
        self,
        method: str,
        status: int,
        probability: float,
        seed: int = 0,
        retry_after: int = 1,
        description: str | None = None,
    ) -> None:
        """Each call of `method` fails with `status` with this probability (seeded: runs repeat). 0 stops it."""
        if probability <= 0:
            self._fault_rates.pop(method.lower(), None)
            return
        rate = _FaultRate(status, probability, random.Random(seed), retry_after, description)
        self._fault_rates[method.lower()] = rate

    def delay_next(self, method: str, seconds: float, count: int = 1, *, after_processing: bool = False) -> None:
        """Hold the next `count` calls of `method` for `seconds`, to make clients time out.

        By default the wait comes first and a call whose client has left meanwhile is dropped (`dropped`),
        like a request lost on the way. after_processing=True carries the call out first and delays only
        the answer: the message is sent but the client never hears so, the case that makes duplicates.
        """
        self._delays.setdefault(method.lower(), deque()).extend(_Delay(seconds, after_processing) for _ in range(count))

    def delay_rate(
        self, method: str, probability: float, seconds: float, *, after_processing: bool = False, seed: int = 0
    ) -> None:
        """Each call of `method` is held as by delay_next with this probability (seeded). 0 stops it."""
        if probability <= 0:
            self._delay_rates.pop(method.lower(), None)
            return
        self._delay_rates[method.lower()] = (probability, _Delay(seconds, after_processing), random.Random(seed))

    def fail_for(self, method: str, seconds: float, status: int = 500, retry_after: int = 1) -> None:
        """Every call of `method` ("*": of every method) fails with `status` for the next `seconds`, without
        being carried out: an outage. Counted as any failure (`count_5xx`, `count_429`, `calls`)."""
        self._outages[method.lower()] = (time.monotonic() + seconds, status, retry_after)

    def garble_next(self, method: str, count: int = 1) -> None:
        """Carry out the next `count` calls of `method`, then answer with a body cut off mid-JSON (status
        200), as a broken proxy or a dropped connection would: the message is sent, the client cannot
        read so."""
        key = method.lower()
        self._garbles[key] = self._garbles.get(key, 0) + count

    def garble_rate(self, method: str, probability: float, seed: int = 0) -> None:
        """Each call of `method` is garbled as by garble_next with this probability (seeded). 0 stops it."""
        if probability <= 0:
            self._garble_rates.pop(method.lower(), None)
            return
        self._garble_rates[method.lower()] = (probability, random.Random(seed))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._fault_rates.clear()
        self._delays.clear()
        self._delay_rates.clear()
        self._outages.clear()
        self._garbles.clear()
        self._garble_rates.clear()

    def set_rate_limit(self, per_second: int | None = None, per_chat: bool = False) -> None:
        """Telegram's flood limits: at most `per_second` successful sends in any one-second window (None: no
        limit) and, with per_chat, 1 a second per private chat and 20 a minute per group. Excess: 429."""
        self._global_limit = per_second
        self._per_chat_limits = per_chat
        self._send_times.clear()
        self._chat_send_times.clear()

    def _injected_fault(self, key: str) -> BotAPIError | None:
        for name in (key, "*"):
            outage = self._outages.get(name)
            if outage is not None:
                until, status, retry_after = outage
                if time.monotonic() < until:
                    return status_error(status, retry_after, None)
                del self._outages[name]
        queue = self._faults.get(key)
        if queue:
            fault = queue[0]
            fault.count -= 1
            if fault.count <= 0:
                queue.popleft()
            return status_error(fault.status, fault.retry_after, fault.description)
        rate = self._fault_rates.get(key)
        if rate is not None and rate.rng.random() < rate.probability:
            return status_error(rate.status, rate.retry_after, rate.description)
        return None

    def _admit_send(self, chat_id: int) -> None:
        """The flood limits, over a sliding window of the sends that succeeded."""
        if self._global_limit is None and not self._per_chat_limits:
            return
        now = time.monotonic()
        recent = self._send_times
        if self._global_limit is not None:
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= self._global_limit:
                self.rate_limited += 1
                raise too_many_requests(max(1, math.ceil(1.0 - (now - recent[0]))))
        if self._per_chat_limits:
            window, allowed = (60.0, 20) if chat_id < 0 else (1.0, 1)
            chat_recent = self._chat_send_times.setdefault(chat_id, deque())
            while chat_recent and now - chat_recent[0] >= window:
                chat_recent.popleft()
            if len(chat_recent) >= allowed:
                self.rate_limited += 1
                raise too_many_requests(max(1, math.ceil(window - (now - chat_recent[0]))))
            chat_recent.append(now)
        if self._global_limit is not None:
            recent.append(now)

    def _next_delay(self, method: str) -> _Delay | None:
        queue = self._delays.get(method.lower())
        if queue:
            return queue.popleft()
        rate = self._delay_rates.get(method.lower())
        if rate is not None and rate[2].random() < rate[0]:
            return rate[1]
        return None

    def _garble(self, method: str) -> bool:
        """Whether this call's answer is to be garbled (it was carried out)."""
        key = method.lower()
        left = self._garbles.get(key, 0)
        if left:
            self._garbles[key] = left - 1
        else:
            rate = self._garble_rates.get(key)
            if rate is None or rate[1].random() >= rate[0]:
                return False
        self.garbled += 1
        return True

    async def _hold_or_drop(self, request: web.Request, method: str, params: Params, seconds: float) -> bool:
        """Hold a call; False if its client gave up meanwhile. Such a call, like a request lost on the way,
        is never carried out (status 499 in the log)."""
        try:
            await self._pause(seconds)
        except asyncio.CancelledError:
            self._dropped(method, params)
            raise
        if request.transport is None or request.transport.is_closing():
            self._dropped(method, params)
            return False
        return True

    def _dropped(self, method: str, params: Params) -> None:
        self.dropped += 1
        self.method_counts.add(method)
        self._record(Call(method, params.record(), 499, "client closed the request", at=time.monotonic()))
