"""The terminal chat: the same bot in a terminal, with no token and no network.

An input adapter like the Telegram handlers: each line becomes an update for the
service; what the bot says is printed by `bot/channels/terminal.py`. Buttons are
answered by number or by label. When standard input is not a terminal, each line
is one message, so a conversation can be piped in; the command ends at the end of input.
A line ending in a backslash goes on in the next: one message of several lines.

Both sides of a case can be walked here. `/as staff` makes the terminal user a staff
member in the staff chat (its commands, its buttons, replies to its questions);
`/as merchant` goes back. `/wait 2h` moves this chat's own clock forward and runs
the jobs that were due, so follow-ups and SLA warnings show without waiting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Literal, TextIO

from bot.channels.terminal import TerminalMessenger
from bot.clock import OffsetClock
from bot.delivery.callbacks import unpack
from bot.delivery.outbox import Outbox
from bot.i18n import Translator
from bot.services.conversation import ConversationService
from bot.services.team import Team, find_member
from bot.services.turn import Incoming, StaffAction

WAIT = re.compile(r"^(\d{1,4})\s*([mhd])$", re.IGNORECASE)
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MORE = "… "  # the prompt of a line that goes on from the one before (it ended in a backslash)

DueJobs = Callable[[], Awaitable[None]]


class TerminalChat:
    def __init__(
        self,
        service: ConversationService,
        outbox: Outbox,
        messenger: TerminalMessenger,
        user_id: int,
        locale: str,
        phone: str | None = None,
        *,
        team: Team | None = None,
        staff_chat_id: int | None = None,
        clock: OffsetClock | None = None,
        due_jobs: DueJobs | None = None,
    ) -> None:
        self.service = service
        self.outbox = outbox
        self.messenger = messenger
        self.user_id = user_id
        self.language_code = "en" if locale == "en" else "zh-hans"
        self.phone = phone
        self.t = Translator(locale)
        self.team = team
        self.staff_chat_id = staff_chat_id
        self.clock = clock
        self.due_jobs = due_jobs
        self.side: Literal["merchant", "staff"] = "merchant"
        self._asking_phone = False

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
        if self.messenger.is_contact_button(line) and self.phone:
            return Incoming(kind="contact", contact_phone=self.phone, contact_is_own=True, **base)  # type: ignore[arg-type]
        return Incoming(kind="text", text=line, **base)  # type: ignore[arg-type]

    async def say(self, line: str) -> None:
        command, _, args = line.partition(" ")
        if command == "/as":
            await self._switch(args.strip().lower())
        elif command == "/wait":
            await self._wait(args.strip())
        elif self.side == "staff":
            await self._as_staff(line)
        else:
            await self._as_merchant(line)

    async def _as_merchant(self, line: str) -> None:
        if self._asking_phone:
            # The number asked for when the contact button was chosen: from now on it is the user's own.
            self._asking_phone = False
            self.phone = line.strip()
            line = self.messenger.contact_button or line
        elif self.messenger.is_contact_button(line) and not self.phone and self.messenger.button_for(line) is None:
            self._asking_phone = True
            self._print(self.t("terminal_desk.ask_phone"))
            return
        await self.outbox.hand_over(await self.service.handle(self.incoming(line)), self._show_note)

    # ---- the staff side ---------------------------------------------------------------------------------

    def _staff_action(self, message_id: int | None = None, reply_to: int | None = None) -> StaffAction:
        assert self.staff_chat_id is not None
        return StaffAction(
            None,
            self.staff_chat_id,
            self.user_id,
            self.t("terminal_desk.staff_name"),
            message_id,
            self.language_code,
            reply_to_message_id=reply_to,
        )

    async def _as_staff(self, line: str) -> None:
        assert self.team is not None
        registry = self.team.registry
        if line.startswith("/"):
            command, _, args = line[1:].partition(" ")
            handler = registry.staff_commands.get(command.split("@")[0].lower())
            if handler is None:
                commands = " ".join(f"/{name}" for name in sorted(registry.staff_commands))
                self._print(self.t("terminal_desk.staff_commands", commands=commands))
                return
            await self.outbox.hand_over(await handler(self._staff_action(), args))
            return
        data = self.messenger.button_for(line, staff=True)
        button = unpack(data) if data is not None else None
        if button is not None and type(button) in registry.staff_buttons:
            action = self._staff_action(message_id=self.messenger.staff_buttons_message)
            await self.outbox.hand_over(await registry.staff_buttons[type(button)](action, button), self._show_note)
            return
        # Typed text replies to the staff chat's open question, or else to its latest message.
        question = self.messenger.staff_question
        self.messenger.staff_question = None
        outcome = await self.team.reply(self._staff_action(reply_to=question or self.messenger.staff_last), line)
        if outcome is None:
            self._print(self.t("terminal_desk.reply_not_taken"))
        else:
            await self.outbox.hand_over(outcome, self._show_note)

    async def _switch(self, side: str) -> None:
        if side == "merchant":
            self.side = "merchant"
            self._print(self.t("terminal_desk.as_merchant"))
        elif side == "staff" and self.team is not None and self.staff_chat_id is not None:
            self.side = "staff"
            self._print(self.t("terminal_desk.as_staff"))
            await self._enlist()
        else:
            self._print(self.t("terminal_desk.as_usage"))

    async def _enlist(self) -> None:
        """The terminal user, an admin for the session, puts themselves on the staff list as a supervisor,
        through `/staff add` as any admin would (once: a role they gave themselves since is kept)."""
        assert self.team is not None
        async with self.team.updates.sessions() as session:
            listed = await find_member(session, self.user_id, frozenset())
        if listed is None:
            name = self.t("terminal_desk.staff_name")
            await self._as_staff(f"/staff add {self.user_id} supervisor {name}")

    # ---- the clock ----------------------------------------------------------------------------------------

    async def _wait(self, args: str) -> None:
        found = WAIT.match(args)
        if found is None or self.clock is None:
            self._print(self.t("terminal_desk.wait_usage"))
            return
        self.clock.advance(timedelta(**{UNITS[found.group(2).lower()]: int(found.group(1))}))
        zone = self.service.zone
        self._print(self.t("terminal_desk.waited", at=self.clock.now().astimezone(zone).strftime("%Y-%m-%d %H:%M %a")))
        if self.due_jobs is not None:
            await self.due_jobs()

    # ---- printing -----------------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        self.messenger.out.write(text + "\n\n")
        self.messenger.out.flush()

    async def _show_note(self, note: str | None, show_alert: bool = False) -> None:
        """What Telegram would show on a pressed button, printed in brackets."""
        if note:
            self.messenger.out.write(f"({note})\n\n")

    async def run(self, source: TextIO) -> None:
        interactive = source.isatty()
        if interactive:
            self.messenger.out.write(self.t("terminal.choose") + "\n")
            if self.team is not None:
                self.messenger.out.write(self.t("terminal_desk.hint") + "\n")
            self.messenger.out.write(self.t("terminal_walks.more_lines") + "\n")
        # A line ending in a backslash goes on in the next one: one message of several lines, as
        # Telegram sends (e.g. the "work done / parts / note" reply to "Resolved on site").
        pending: list[str] = []
        while True:
            if interactive:
                prompt = "> " if self.side == "merchant" else self.t("terminal_desk.staff_prompt")
                self.messenger.out.write(MORE if pending else prompt)
                self.messenger.out.flush()
            line = await asyncio.to_thread(source.readline)
            if not line:
                if "\n".join(pending).strip():
                    await self.say("\n".join(pending).strip())
                break
            line = line.strip()
            if not line and not pending:
                continue
            if not interactive:
                self.messenger.out.write(f"{MORE if pending else '> '}{line}\n")
            if line.endswith("\\"):
                pending.append(line[:-1].rstrip())
                continue
            if pending:
                line, pending = "\n".join([*pending, line]).strip(), []
                if not line:
                    continue
            await self.say(line)
