"""How long personal data is kept (002 §4.2: only as long as needed): the policy file's `[retention]`.

Answers and tickets are the company's records and are kept; what goes is what only served a
moment: the texts of delivered messages, the ids that stopped Telegram's redeliveries, dialogue
state nobody will continue, and the audit rows saying which staff member saw a full number.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field

# What goes, in the order a purge reports it.
CATEGORIES = ("message_texts", "processed_updates", "dialogue_states", "contact_reveals")


class RetentionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The text (and buttons) of a delivered or failed message is blanked after this many days;
    # the row stays, so replies to an old case message still find their case.
    message_text_days: int = Field(default=30, ge=1, le=3650)
    # Telegram redelivers an update for at most a day: an id older than two has nothing left to stop.
    processed_update_days: int = Field(default=30, ge=2, le=3650)
    # A dialogue is closed after ABANDON_AFTER_HOURS (48 by default); whatever state is still left
    # this long after the last update is dropped without a word.
    dialogue_state_days: int = Field(default=30, ge=3, le=3650)
    # Who saw a merchant's full number (the audit row keeps no number, only who, when and which case).
    contact_reveal_days: int = Field(default=365, ge=1, le=3650)
    # Rows changed per transaction: short transactions keep PostgreSQL's locks and SQLite's writer brief.
    batch_size: int = Field(default=1000, ge=10, le=100_000)
    # When the daily purge runs, merchants' local time.
    daily_at: time = time(3, 30)

    def days(self) -> dict[str, int]:
        """Each category's period, in days."""
        return {
            "message_texts": self.message_text_days,
            "processed_updates": self.processed_update_days,
            "dialogue_states": self.dialogue_state_days,
            "contact_reveals": self.contact_reveal_days,
        }

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Rows older than these go, by category."""
        return {name: now - timedelta(days=days) for name, days in self.days().items()}
