"""The terminal channel's output side: prints what the bot says, buttons numbered.

The input side (reading lines, turning them into updates) is `bot/handlers/terminal.py`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from bot.delivery.port import Payload


@dataclass
class TerminalMessenger:
    """Prints what the bot says; messages for the staff chat are marked as such."""

    user_chat_id: int
    out: TextIO = sys.stdout
    staff_prefix: str = "[staff]"
    buttons: list[tuple[str, str]] = field(default_factory=list)
    contact_button: str | None = None
    _next_id: int = 0

    async def send(self, chat_id: int, payload: Payload) -> int | None:
        self._next_id += 1
        text = payload.get("text", "")
        markup = payload.get("reply_markup") or {}
        if chat_id != self.user_chat_id:
            self.out.write(f"{self.staff_prefix} " + text.replace("\n", f"\n{self.staff_prefix} ") + "\n\n")
            self.out.flush()
            return self._next_id
        self.out.write(text + "\n")
        inline = [b for row in markup.get("inline_keyboard", []) for b in row]
        if inline:
            self.buttons = [(b["text"], b["callback_data"]) for b in inline]
            for number, (label, _) in enumerate(self.buttons, 1):
                self.out.write(f"  [{number}] {label}\n")
        contact = [b for row in markup.get("keyboard", []) for b in row if b.get("request_contact")]
        self.contact_button = contact[0]["text"] if contact else self.contact_button
        if markup.get("remove_keyboard"):
            self.contact_button = None
        self.out.write("\n")
        self.out.flush()
        return self._next_id

    def button_for(self, line: str) -> str | None:
        """Callback data for a typed number or label of the buttons shown last."""
        if line.isdecimal() and 1 <= int(line) <= len(self.buttons):  # not isdigit(): int("²") raises
            return self.buttons[int(line) - 1][1]
        for label, data in self.buttons:
            if line.casefold() == label.casefold():
                return data
        return None
