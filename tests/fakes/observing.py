"""What tests read (the messages the bot sent, the calls it made, its keyboards) and wait for, with a
report of what did happen when the wait times out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.fakes.core import Call, Waiter, describe, holds
from tests.fakes.keyboards import inline_buttons
from tests.fakes.messages import Messages, SentMessage
from tests.fakes.updates import Updates


class Observing(Messages, Updates):
    """Reading the fake's records; waiting on them without polling."""

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages the bot sent, in order (edits applied; deleted ones stay, marked `deleted`)."""
        if chat_id is None:
            return list(self._sent)
        return list(self._sent_by_chat.get(chat_id, ()))

    def last(self, chat_id: int) -> SentMessage:
        messages = self._sent_by_chat.get(chat_id)
        if not messages:
            raise AssertionError(f"the bot sent nothing to chat {chat_id}")
        return messages[-1]

    def texts(self, chat_id: int) -> list[str | None]:
        return [message.text for message in self._sent_by_chat.get(chat_id, ())]

    def calls(self, method: str | None = None) -> list[Call]:
        """Calls answered so far. getUpdates, the poller's heartbeat, is left out unless asked for by name."""
        if method is None:
            return [call for call in self._calls if call.method != "getUpdates"]
        wanted = method.lower()
        return [call for call in self._calls if call.method.lower() == wanted]

    def call_count(self, method: str) -> int:
        return self.method_counts[method]

    @staticmethod
    def buttons(message: SentMessage) -> list[tuple[str, str]]:
        """The inline buttons, row by row, as (text, callback_data); "" for buttons without data (URLs...)."""
        return inline_buttons(message.reply_markup)

    @staticmethod
    def keyboard(message: SentMessage) -> list[str]:
        """The labels of a reply keyboard sent with the message."""
        rows = (message.reply_markup or {}).get("keyboard") or []
        return [button if isinstance(button, str) else str(button.get("text")) for row in rows for button in row]

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - tests want a plain time-out argument
        what: str | None = None,
    ) -> None:
        """Until predicate() is true, re-checked whenever a call is answered or an update queued.

        A predicate that raises (say IndexError on an empty list) counts as not yet true. On time-out:
        an AssertionError saying what was sent and which calls failed.
        """
        waiter = Waiter(predicate, asyncio.get_running_loop().create_future())
        if holds(waiter):
            return
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            raise AssertionError(self._timeout_report(timeout, what or describe(predicate), waiter)) from None
        finally:
            self._waiters.remove(waiter)

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Until the bot has sent `count` messages to the chat in all; returns them."""
        await self.wait_for(
            lambda: len(self._sent_by_chat.get(chat_id, ())) >= count,
            timeout,
            f"{count} messages in chat {chat_id} (so far {len(self._sent_by_chat.get(chat_id, ()))})",
        )
        return self.sent(chat_id)

    async def wait_for_calls(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[Call]:
        await self.wait_for(lambda: self.call_count(method) >= count, timeout, f"{count} calls of {method}")
        return self.calls(method)

    def _timeout_report(self, timeout: float, what: str, waiter: Waiter) -> str:
        lines = [f"timed out after {timeout}s waiting for {what}"]
        if waiter.error is not None:
            lines.append(f"the condition last raised {type(waiter.error).__name__}: {waiter.error}")
        recent = self._sent[-10:]
        lines.append(f"messages sent ({len(self._sent)} in all, the last {len(recent)}):")
        lines += [f"  chat {m.chat_id} #{m.message_id} {m.method}: {m.text!r} {self.buttons(m)}" for m in recent]
        failed = [call for call in self._calls if call.status != 200][-10:]
        if failed:
            lines.append("calls that failed (the last 10):")
            lines += [f"  {call.method} -> {call.status} {call.description}" for call in failed]
        lines.append(f"updates waiting for the bot: {len(self._pending)}; webhook: {self.webhook_url or 'none'}")
        return "\n".join(lines)
