"""Where capabilities plug in: commands, buttons, form outcomes and hooks.

Each capability (dialogues, preferences, merchants, repair, follow-ups, the staff
desk...) registers what it answers in `bot/app.py`. A name or a button kind taken
twice stops start-up, so two capabilities can never silently shadow each other, and
no capability reaches into another's tables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.delivery.callbacks import CallbackData
from bot.delivery.outcome import Outcome
from bot.dialogs.schema import Form
from bot.services.turn import Member, StaffAction, Turn
from bot.services.updates import UpdateWork
from bot.storage.models import Submission

B = TypeVar("B", bound=CallbackData)

TurnHandler = Callable[[Turn], Awaitable[None]]
ButtonHandler = Callable[[Turn, Any], Awaitable[None]]
# Something a merchant sends outside commands and buttons; True when it was taken.
InputHandler = Callable[[Turn], Awaitable[bool]]
# A submitted form turned into its consequences (a ticket, a follow-up result...).
FormHandler = Callable[[Turn, Form, Submission, dict[str, Any]], Awaitable[None]]
StaffCommand = Callable[[StaffAction, str], Awaitable[Outcome]]
StaffButton = Callable[[StaffAction, Any], Awaitable[Outcome]]
# A staff member's reply to one of the bot's messages, inside the update's transaction; True when taken.
StaffReply = Callable[[UpdateWork, StaffAction, Member, str], Awaitable[bool]]


class DuplicateRegistration(ValueError):
    """Two capabilities claimed the same command, button kind or form outcome."""


class Registry:
    def __init__(self) -> None:
        self.commands: dict[str, TurnHandler] = {}
        self.staff_commands: dict[str, StaffCommand] = {}
        self.buttons: dict[type[CallbackData], ButtonHandler] = {}
        self.staff_buttons: dict[type[CallbackData], StaffButton] = {}
        self.outcomes: dict[str, FormHandler] = {}
        self.submitted: list[FormHandler] = []  # every submitted form, after its own outcome
        self.inputs: list[InputHandler] = []  # tried in registration order
        self.staff_replies: list[StaffReply] = []  # tried in registration order

    def command(self, name: str, handler: TurnHandler) -> None:
        """A merchant's `/name`."""
        self._free_command(name)
        self.commands[name] = handler

    def staff_command(self, name: str, handler: StaffCommand) -> None:
        """A staff member's `/name` (in the staff group, or from an admin anywhere)."""
        self._free_command(name)
        self.staff_commands[name] = handler

    def button(self, kind: type[B], handler: Callable[[Turn, B], Awaitable[None]]) -> None:
        self._free_button(kind)
        self.buttons[kind] = handler

    def staff_button(self, kind: type[B], handler: Callable[[StaffAction, B], Awaitable[Outcome]]) -> None:
        self._free_button(kind)
        self.staff_buttons[kind] = handler

    def outcome(self, name: str, handler: FormHandler) -> None:
        """What a form's `outcome:` names happens when it is submitted."""
        if name in self.outcomes:
            raise DuplicateRegistration(f"form outcome {name!r} is registered twice")
        self.outcomes[name] = handler

    def on_submitted(self, hook: FormHandler) -> None:
        self.submitted.append(hook)

    def on_input(self, handler: InputHandler) -> None:
        self.inputs.append(handler)

    def staff_reply(self, handler: StaffReply) -> None:
        """Staff replying to a bot message (a call task, a case, a question the desk asked)."""
        self.staff_replies.append(handler)

    def _free_command(self, name: str) -> None:
        if name in self.commands or name in self.staff_commands:
            raise DuplicateRegistration(f"command /{name} is registered twice")

    def _free_button(self, kind: type[CallbackData]) -> None:
        if kind in self.buttons or kind in self.staff_buttons:
            raise DuplicateRegistration(f"button {kind.__name__} ({kind.prefix}:) is registered twice")
