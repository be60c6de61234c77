"""Carrying out one Bot API call, whichever way it came (an HTTP request or a webhook's answer): an
injected fault first, else the method's handler; then the call is counted, logged and answered."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.fakes.core import Call
from tests.fakes.limits import Limits
from tests.fakes.wire import JSON, BotAPIError, Params, Via

Handler = Callable[[Params], Any]
# Telegram's spelling of the method, its handler, and whether the handler is a coroutine function.
MethodEntry = tuple[str, Handler, bool]


class Calls(Limits):
    """The method table's runner. The table itself is the server's (FakeBotAPI._method_table)."""

    _methods: dict[str, MethodEntry]  # by lower-cased method name: Telegram's are case-insensitive

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.count_429 = 0
        self.count_5xx = 0

    async def _execute(self, entry: MethodEntry, params: Params, via: Via = "http") -> tuple[int, JSON]:
        method, handler, is_async = entry
        try:
            fault = self._injected_fault(method.lower())
            if fault is not None:
                raise fault
            result = await handler(params) if is_async else handler(params)
        except BotAPIError as error:
            return self._conclude(method, params, error, via)
        return self._conclude(method, params, result, via)

    def _conclude(self, method: str, params: Params, outcome: Any, via: Via = "http") -> tuple[int, JSON]:
        """Count and record the call, wake whoever waits, and give the status and body to answer with."""
        self.method_counts.add(method)
        if isinstance(outcome, BotAPIError):
            status, body, description, result = outcome.code, outcome.body(), outcome.description, None
            if status == 429:
                self.count_429 += 1
            elif status >= 500:
                self.count_5xx += 1
        else:
            status, body, description, result = 200, {"ok": True, "result": outcome}, None, outcome
        self._record(Call(method, params.record(), status, description, result, time.monotonic(), via))
        return status, body
