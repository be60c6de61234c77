"""What handling one update decided, in channel-neutral terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.storage.models import OutboxMessage


@dataclass
class Outcome:
    """The outbox rows to send now, and the short note for a pressed button (None: just stop the spinner)."""

    outbox_ids: list[int] = field(default_factory=list)
    callback_text: str | None = None
    duplicate: bool = False  # the update was handled before (a redelivery): nothing was done again
    alert: bool = False  # the note must be read (a refusal): shown as an alert, not a passing toast
    # The rows themselves, as the update's transaction wrote them: sent from memory, without reading them back.
    messages: list[OutboxMessage] = field(default_factory=list)
