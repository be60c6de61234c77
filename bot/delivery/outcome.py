"""What handling one update decided, in channel-neutral terms."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """The outbox rows to send now, and the short note for a pressed button (None: just stop the spinner)."""

    outbox_ids: list[int] = field(default_factory=list)
    callback_text: str | None = None
    duplicate: bool = False  # the update was handled before (a redelivery): nothing was done again
    alert: bool = False  # the note must be read (a refusal): shown as an alert, not a passing toast
