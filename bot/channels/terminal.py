"""The terminal channel's output side: prints what the bot says, buttons numbered.

The input side (reading lines, turning them into updates) is `bot/handlers/terminal.py`.
The staff chat's messages are printed too, marked, with their buttons numbered, so the
terminal user can work the staff side (`/as staff`) as well as the merchant's.
"""

from __future__ import annotations

import base64
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.delivery.port import Payload


@dataclass
class TerminalMessenger:
    """Prints what the bot says; messages for the staff chat are marked as such."""

    user_chat_id: int
    out: TextIO = sys.stdout
    staff_prefix: str = "[staff]"
    buttons: list[tuple[str, str]] = field(default_factory=list)
    contact_button: str | None = None
    contact_number: int | None = None  # the number the contact button was printed with, while it holds
    # The staff chat: the buttons printed last and their message, the last question asking for a
    # reply (force_reply), and the last message: what `/as staff` presses and replies to.
    staff_buttons: list[tuple[str, str]] = field(default_factory=list)
    staff_buttons_message: int | None = None
    staff_question: int | None = None
    staff_last: int | None = None
    _next_id: int = 0

    async def send(self, chat_id: int, payload: Payload) -> int | None:
        # An edit keeps its message id, as in Telegram; in the terminal it is printed again.
        edited = payload.get("edit_message_id")
        if edited is None:
            self._next_id += 1
        message_id = int(edited) if edited is not None else self._next_id
        text = payload.get("text", "")
        # An album (a case's photos and documents): each file named under its caption, by its path here.
        for item in payload.get("media") or []:
            text += "\n📎 " + (_saved(item) if item.get("upload") else str(item["media"]).removeprefix("local:"))
        markup = payload.get("reply_markup") or {}
        if chat_id != self.user_chat_id:
            self._show_staff(message_id, text, markup)
        else:
            self._show_user(text, markup)
        self.out.write("\n")
        self.out.flush()
        return message_id

    def _show_user(self, text: str, markup: dict[str, Any]) -> None:
        self.out.write(text + "\n")
        inline = [b for row in markup.get("inline_keyboard", []) for b in row]
        if inline:
            self.buttons = [(b["text"], b["callback_data"]) for b in inline]
            self.contact_number = None  # the numbers now name these buttons
            for number, (label, _) in enumerate(self.buttons, 1):
                self.out.write(f"  [{number}] {label}\n")
        contact = [b for row in markup.get("keyboard", []) for b in row if b.get("request_contact")]
        if contact:
            # A reply keyboard: in Telegram it stands under the input field; here it is one more number.
            self.contact_button = contact[0]["text"]
            self.contact_number = len(inline) + 1 if inline else 1
            if not inline:
                self.buttons = []
            self.out.write(f"  [{self.contact_number}] {self.contact_button}\n")
        if markup.get("remove_keyboard"):
            self.contact_button = self.contact_number = None

    def _show_staff(self, message_id: int, text: str, markup: dict[str, Any]) -> None:
        prefix = self.staff_prefix
        self.out.write(f"{prefix} " + text.replace("\n", f"\n{prefix} ") + "\n")
        inline = [b for row in markup.get("inline_keyboard", []) for b in row]
        if inline:
            self.staff_buttons = [(b["text"], b["callback_data"]) for b in inline]
            self.staff_buttons_message = message_id
            for number, (label, _) in enumerate(self.staff_buttons, 1):
                self.out.write(f"{prefix}   [{number}] {label}\n")
        if markup.get("force_reply"):
            self.staff_question = message_id
        self.staff_last = message_id

    def button_for(self, line: str, staff: bool = False) -> str | None:
        """Callback data for a typed number or label of the buttons shown last (in the staff chat, when `staff`)."""
        buttons = self.staff_buttons if staff else self.buttons
        if line.isdecimal() and 1 <= int(line) <= len(buttons):  # not isdigit(): int("²") raises
            return buttons[int(line) - 1][1]
        for label, data in buttons:
            if line.casefold() in (label.casefold(), _words(label).casefold()):
                return data
        return None

    def is_contact_button(self, line: str) -> bool:
        """Whether the line chooses the "share my phone number" button, by its number or its label."""
        if self.contact_button is None:
            return False
        if self.contact_number is not None and line.isdecimal() and int(line) == self.contact_number:
            return True
        return line.casefold() in (self.contact_button.casefold(), _words(self.contact_button).casefold())


def _saved(item: dict[str, Any]) -> str:
    """A file the bot uploads (a report's chart), written where the terminal user can open it."""
    folder = Path(tempfile.gettempdir()) / "posbot"
    folder.mkdir(exist_ok=True)
    path = folder / Path(str(item.get("filename") or "file")).name
    path.write_bytes(base64.b64decode(item["upload"]))
    return str(path)


def _words(label: str) -> str:
    """A label without its leading symbol ("🙋 Take" is "Take"): what a person types for it."""
    start = next((i for i, c in enumerate(label) if c.isalnum()), len(label))
    return label[start:].strip()
