"""What crosses the dialogue engine's edge: the Texts and Buttons it sends, the inputs it takes,
and the button data words it understands.

Kept apart from the engine so the question kinds (`bot.dialogs.kinds`) can use them while the
engine uses the kinds; `bot.dialogs.engine` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# Button data the engine understands besides option values (all short: Telegram
# allows 64 bytes of callback data, and the transport adds a revision prefix).
BACK = "_back"
SKIP = "_skip"
DONE = "_done"
SUBMIT = "_submit"
EDIT = "_edit"
CANCEL = "_cancel"
SUMMARY = "_summary"
KNOWN = "_known"
EDIT_PREFIX = "_e:"
TERMINAL_PREFIX = "_t:"
SLOT_PREFIX = "_s:"


# ---- what the engine sends ------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A locale key and its parameters; parameters may be Texts (or lists of them) too."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    label: Text
    data: str


Rows = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Reply:
    parts: tuple[Text, ...]
    buttons: Rows = ()
    # Replace the message whose button was pressed (multi-choice toggles) instead of sending anew.
    replace: bool = False
    # Offer Telegram's "share my phone number" keyboard with this message.
    request_contact: bool = False


def in_rows(buttons: Sequence[Button], per_row: int) -> Rows:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


# ---- what the engine takes ------------------------------------------------------------------


@dataclass(frozen=True)
class TextInput:
    text: str


@dataclass(frozen=True)
class ButtonInput:
    data: str


@dataclass(frozen=True)
class FileInput:
    kind: Literal["photo", "document"]
    file_id: str
    name: str | None = None


@dataclass(frozen=True)
class ContactInput:
    phone: str
    own: bool


@dataclass(frozen=True)
class OtherInput:
    """Anything the engine never accepts as an answer: a sticker, voice, location..."""

    kind: str


Input = TextInput | ButtonInput | FileInput | ContactInput | OtherInput
