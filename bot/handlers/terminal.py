"""The terminal chat: the same bot in a terminal, with no token and no network.

An input adapter like the Telegram handlers: each line becomes an update for the
service; what the bot says is printed by `bot/channels/terminal.py`. Buttons are
answered by number or by label. When standard input is not a terminal, each line
is one message, so a conversation can be piped in; the command ends at the end of input.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from bot.channels.terminal import TerminalMessenger
from bot.delivery.outbox import Outbox
from bot.i18n import Translator
from bot.services.conversation import ConversationService
from bot.services.turn import Incoming


class TerminalChat:
    def __init__(
        self,
        service: ConversationService,
        outbox: Outbox,
        messenger: TerminalMessenger,
        user_id: int,
        locale: str,
        phone: str | None = None,
    ) -> None:
        self.service = service
        self.outbox = outbox
        self.messenger = messenger
        self.user_id = user_id
        self.language_code = "en" if locale == "en" else "zh-hans"
        self.phone = phone
        self.t = Translator(locale)

    def incoming(self, line: str) -> Incoming:
        base = {"user_id": self.user_id, "chat_id": self.user_id, "language_code": self.language_code}
        if line.startswith("/file "):
            path = Path(line.removeprefix("/file ").strip())
            kind = "photo" if path.suffix.lower() in (".jpg", ".jpeg", ".png") else "document"
            return Incoming(kind="file", file_kind=kind, file_id=f"local:{path}", file_name=path.name, **base)  # type: ignore[arg-type]
        if line.startswith("/"):
            command, _, args = line[1:].partition(" ")
            return Incoming(kind="command", command=command.split("@")[0].lower(), args=args, **base)  # type: ignore[arg-type]
        data = self.messenger.button_for(line)
        if data is not None:
            return Incoming(kind="button", data=data, **base)  # type: ignore[arg-type]
        contact = self.messenger.contact_button
        if contact is not None and line.casefold() == contact.casefold() and self.phone:
            return Incoming(kind="contact", contact_phone=self.phone, contact_is_own=True, **base)  # type: ignore[arg-type]
        return Incoming(kind="text", text=line, **base)  # type: ignore[arg-type]

    async def say(self, line: str) -> None:
        await self.outbox.hand_over(await self.service.handle(self.incoming(line)), self._show_note)

    async def _show_note(self, note: str | None, show_alert: bool = False) -> None:
        """What Telegram would show on a pressed button, printed in brackets."""
        if note:
            self.messenger.out.write(f"({note})\n\n")

    async def run(self, source: TextIO) -> None:
        interactive = source.isatty()
        if interactive:
            self.messenger.out.write(self.t("terminal.choose") + "\n")
        while True:
            if interactive:
                self.messenger.out.write("> ")
                self.messenger.out.flush()
            line = await asyncio.to_thread(source.readline)
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            if not interactive:
                self.messenger.out.write(f"> {line}\n")
            await self.say(line)
