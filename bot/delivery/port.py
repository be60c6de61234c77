"""The messenger port: everything the bot says leaves through one of these."""

from __future__ import annotations

from typing import Any, Protocol

# {"text": str, "reply_markup": dict | None} and optionally "edit_message_id" (edit in place),
# "entities" (Bot API MessageEntity dicts, e.g. text_mention to notify people), "reply_to_message_id"
# (sent under that message in the same chat) or "media"
# ([{"type": "photo" | "document", "media": file_id}, ...]: sent as an album, "text" its caption).
Payload = dict[str, Any]


class DeliveryError(Exception):
    """A message could not be delivered now."""


class Unreachable(DeliveryError):
    """The chat will not take messages (bot blocked, user deactivated): a person must call."""


class Rejected(DeliveryError):
    """The message itself is wrong (Bad Request); sending it again would fail again."""


class TryLater(DeliveryError):
    """A passing fault (server error, time-out) that outlasted the messenger's own retries."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Messenger(Protocol):
    async def send(self, chat_id: int, payload: Payload) -> int | None:
        """Send (or edit, with `edit_message_id`) and return the message id."""
        ...


def bulk_of(messenger: Messenger) -> Messenger:
    """The messenger to send bulk (follow-ups) through: its `bulk` view if it has one, whose sends yield
    the shared limits to interactive ones (replies, staff notices); else the messenger itself."""
    view: Messenger = getattr(messenger, "bulk", messenger)
    return view
