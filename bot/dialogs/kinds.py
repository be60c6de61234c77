"""Every question kind in one place: the buttons it offers, how it reads the merchant's input,
which stored values it accepts and how an answer reads back.

The engine looks a step's handler up once (`handler_for`) and never branches on the kind
itself, so adding a kind means one class here, one line in `HANDLERS` and its locale keys.
Pure like the engine: no I/O, no clock (the caller's `now` is passed in).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from bot.dialogs.messages import (
    DONE,
    KNOWN,
    SLOT_PREFIX,
    TERMINAL_PREFIX,
    Button,
    ButtonInput,
    ContactInput,
    FileInput,
    Input,
    Reply,
    Rows,
    Text,
    TextInput,
    in_rows,
)
from bot.dialogs.schema import Kind, Step
from bot.domain.phones import normalize_phone
from bot.domain.privacy import mask_phone

# Appointment shortcuts: slot name -> (days from today, hour).
SLOTS: dict[str, tuple[int, int]] = {"d1am": (1, 10), "d1pm": (1, 15), "d2am": (2, 10)}
DATETIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M", "%m-%d %H:%M", "%m/%d %H:%M")


class Dialogue(Protocol):
    """What a kind may look at in the open dialogue (the engine's State has both)."""

    @property
    def context(self) -> Mapping[str, Any]: ...

    @property
    def pending(self) -> tuple[Any, ...]: ...


# ---- what reading one input comes to --------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The input is the answer."""

    value: Any


@dataclass(frozen=True)
class Refused:
    """The input does not answer the question; `problem` says what is expected, nothing changes."""

    problem: Text


@dataclass(frozen=True)
class Collected:
    """The input changes an answer still being gathered (choices ticked, files sent so far).

    With a `receipt` the engine sends it (adding the navigation row); without one it shows
    the question again in place of the message whose button was pressed.
    """

    pending: tuple[Any, ...]
    receipt: Reply | None = None


Reading = Accepted | Refused | Collected


# ---- the protocol -------------------------------------------------------------------------------------


class KindHandler(ABC):
    """One question kind. The defaults suit a question answered by one typed or pressed value."""

    kind: ClassVar[Kind]

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        """The answer buttons shown with the question (the engine adds Back/Skip)."""
        return ()

    def hint(self, step: Step) -> Text | None:
        """A line under the prompt saying how to answer, when buttons alone do not say it."""
        return None

    def offers_contact(self, step: Step, dialogue: Dialogue) -> bool:
        """Whether the question comes with Telegram's "share my phone number" keyboard."""
        return False

    @abstractmethod
    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        """Turn one input (Back, Skip and Summary are already handled) into an answer or a refusal."""

    @abstractmethod
    def validate(self, step: Step, value: Any) -> bool:
        """Whether `value` (never None: the engine handles skipped answers) may be stored."""

    def describe(self, form_key: str, step: Step, value: Any) -> Text:
        """How a stored answer (never None) reads back in the summary and to staff."""
        return Text("answer.raw", {"value": str(value)})

    def resume(self, value: Any) -> tuple[Any, ...]:
        """What is pending when an answered question is asked again (Back, Edit)."""
        return ()


def _use_buttons() -> Refused:
    return Refused(Text("error.use_buttons"))


# ---- the kinds ------------------------------------------------------------------------------------


class Choice(KindHandler):
    kind = Kind.CHOICE

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        return in_rows([Button(Text(step.option_key(form_key, o)), o) for o in step.options], 2)

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if isinstance(incoming, ButtonInput) and incoming.data in step.options:
            return Accepted(incoming.data)
        return _use_buttons()

    def validate(self, step: Step, value: Any) -> bool:
        return value in step.options

    def describe(self, form_key: str, step: Step, value: Any) -> Text:
        return Text(step.option_key(form_key, value))


class MultiChoice(KindHandler):
    """Options are ticked and unticked on one message, then Done; the answer keeps the form's order."""

    kind = Kind.MULTI_CHOICE

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        chosen = set(dialogue.pending)
        toggles = [
            Button(
                Text(
                    "button.toggle",
                    {
                        "mark": Text("mark.on" if o in chosen else "mark.off"),
                        "label": Text(step.option_key(form_key, o)),
                    },
                ),
                o,
            )
            for o in step.options
        ]
        return in_rows(toggles, 2) + ((Button(Text("button.done"), DONE),),)

    def hint(self, step: Step) -> Text | None:
        return Text("hint.multi_choice")

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if not isinstance(incoming, ButtonInput):
            return _use_buttons()
        chosen = list(dialogue.pending)
        if incoming.data == DONE:
            if not chosen:
                return Refused(Text("error.choose_at_least_one"))
            return Accepted([o for o in step.options if o in chosen])
        if incoming.data not in step.options:
            return _use_buttons()
        if incoming.data in chosen:
            chosen.remove(incoming.data)
        else:
            chosen.append(incoming.data)
        return Collected(tuple(chosen))

    def validate(self, step: Step, value: Any) -> bool:
        return (
            isinstance(value, list)
            and bool(value)
            and len(set(value)) == len(value)
            and all(v in step.options for v in value)
        )

    def describe(self, form_key: str, step: Step, value: Any) -> Text:
        return Text("answer.list", {"items": [Text(step.option_key(form_key, v)) for v in value]})

    def resume(self, value: Any) -> tuple[Any, ...]:
        # Asked again, the earlier choices stay ticked.
        return tuple(value) if isinstance(value, list) else ()


class YesNo(KindHandler):
    kind = Kind.YES_NO

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        return ((Button(Text("button.yes"), "yes"), Button(Text("button.no"), "no")),)

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if isinstance(incoming, ButtonInput) and incoming.data in ("yes", "no"):
            return Accepted(incoming.data == "yes")
        return _use_buttons()

    def validate(self, step: Step, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self, form_key: str, step: Step, value: Any) -> Text:
        return Text("button.yes" if value else "button.no")


class _Scale(KindHandler):
    """A whole number from `low` to `high`, pressed or typed."""

    low: ClassVar[int]
    high: ClassVar[int]

    def _in_range(self, digits: str) -> bool:
        # isdecimal, not isdigit: "²" is a digit that int() refuses; full-width "４" is decimal and fine.
        return digits.isdecimal() and self.low <= int(digits) <= self.high

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if isinstance(incoming, TextInput):
            text = incoming.text.strip()
            if self._in_range(text):
                return Accepted(int(text))
            return Refused(Text("error.number_range", {"low": self.low, "high": self.high}))
        if isinstance(incoming, ButtonInput) and self._in_range(incoming.data):
            return Accepted(int(incoming.data))
        return _use_buttons()

    def validate(self, step: Step, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high


class Rating(_Scale):
    kind = Kind.RATING
    low, high = 1, 5

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        return (tuple(Button(Text("button.rating", {"n": n}), str(n)) for n in range(self.low, self.high + 1)),)

    def describe(self, form_key: str, step: Step, value: Any) -> Text:
        return Text("button.rating", {"n": value})


class Nps(_Scale):
    kind = Kind.NPS
    low, high = 0, 10

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        # Eleven buttons do not fit one row on a phone: 0-5 and 6-10.
        return (
            tuple(Button(Text("button.number", {"n": n}), str(n)) for n in range(0, 6)),
            tuple(Button(Text("button.number", {"n": n}), str(n)) for n in range(6, 11)),
        )


class FreeText(KindHandler):
    kind = Kind.TEXT

    def hint(self, step: Step) -> Text | None:
        return Text("hint.text", {"max": step.max_length})

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if not isinstance(incoming, TextInput):
            return Refused(Text("error.type_text"))
        text = incoming.text.strip()
        if len(text) > step.max_length:
            return Refused(Text("error.text_too_long", {"max": step.max_length, "got": len(text)}))
        if len(text) < step.min_length:
            return Refused(Text("error.text_too_short", {"min": step.min_length}))
        return Accepted(text)

    def validate(self, step: Step, value: Any) -> bool:
        return isinstance(value, str) and step.min_length <= len(value.strip()) <= step.max_length


class Phone(KindHandler):
    """Typed, shared as the sender's own contact, or the number we already have (one button)."""

    kind = Kind.PHONE

    def _known(self, step: Step, dialogue: Dialogue) -> Any:
        return dialogue.context.get(step.known_from or "phone")

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        known = self._known(step, dialogue)
        if isinstance(known, str) and known:
            return ((Button(Text("button.use_known_phone", {"phone": mask_phone(known)}), KNOWN),),)
        return ()

    def hint(self, step: Step) -> Text | None:
        return Text("hint.phone")

    def offers_contact(self, step: Step, dialogue: Dialogue) -> bool:
        return not self._known(step, dialogue)

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if isinstance(incoming, ButtonInput) and incoming.data == KNOWN:
            known = self._known(step, dialogue)
            if isinstance(known, str) and normalize_phone(known, step.region) == known:
                return Accepted(known)
            return Refused(Text("error.invalid_phone"))
        if isinstance(incoming, ContactInput):
            if not incoming.own:
                return Refused(Text("error.not_own_contact"))
            return self._normalized(step, incoming.phone)
        if not isinstance(incoming, TextInput):
            return Refused(Text("error.type_phone"))
        return self._normalized(step, incoming.text.strip())

    def _normalized(self, step: Step, raw: str) -> Reading:
        phone = normalize_phone(raw, step.region)
        return Accepted(phone) if phone else Refused(Text("error.invalid_phone"))

    def validate(self, step: Step, value: Any) -> bool:
        return isinstance(value, str) and normalize_phone(value, step.region) == value


class Serial(KindHandler):
    """A terminal serial: typed (spaces dropped, upper-cased) or picked from the merchant's terminals."""

    kind = Kind.SERIAL

    def _terminals(self, step: Step, dialogue: Dialogue) -> list[str]:
        if step.options_from is None:
            return []
        listed = dialogue.context.get(step.options_from, [])
        return [str(s) for s in listed] if isinstance(listed, list) else []

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        # The button carries the terminal's index, not its serial: callback data is short.
        serials = self._terminals(step, dialogue)
        return in_rows(
            [Button(Text("button.terminal", {"serial": s}), f"{TERMINAL_PREFIX}{i}") for i, s in enumerate(serials)],
            1,
        )

    def hint(self, step: Step) -> Text | None:
        return Text("hint.serial_or_pick" if step.options_from else "hint.serial")

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if isinstance(incoming, ButtonInput) and incoming.data.startswith(TERMINAL_PREFIX):
            terminals = self._terminals(step, dialogue)
            index = incoming.data.removeprefix(TERMINAL_PREFIX)
            if index.isdecimal() and int(index) < len(terminals):
                return Accepted(terminals[int(index)])
            return _use_buttons()
        if not isinstance(incoming, TextInput):
            return Refused(Text("error.type_serial"))
        serial = re.sub(r"\s+", "", incoming.text).upper()
        if not step.serial_pattern.match(serial):
            return Refused(Text("error.invalid_serial"))
        return Accepted(serial)

    def validate(self, step: Step, value: Any) -> bool:
        return isinstance(value, str) and bool(step.serial_pattern.match(value))


class DateTime(KindHandler):
    """A moment: a visit time (a slot button, or typed: without a year it means the next such moment),
    or, when the step looks back (`max_days_ahead` 0 or less), when something happened: typed, and
    without a year the last such moment."""

    kind = Kind.DATETIME

    def buttons(self, form_key: str, step: Step, dialogue: Dialogue) -> Rows:
        if _looks_back(step):
            return ()
        return (tuple(Button(Text(f"button.slot_{name}"), f"{SLOT_PREFIX}{name}") for name in SLOTS),)

    def hint(self, step: Step) -> Text | None:
        return Text("hint.datetime_past" if _looks_back(step) else "hint.datetime")

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        if isinstance(incoming, ButtonInput) and incoming.data.startswith(SLOT_PREFIX) and not _looks_back(step):
            slot = SLOTS.get(incoming.data.removeprefix(SLOT_PREFIX))
            if slot is None:
                return _use_buttons()
            return Accepted(_slot_time(now, *slot).isoformat())
        if not isinstance(incoming, TextInput):
            return Refused(Text("error.type_datetime_past" if _looks_back(step) else "error.type_datetime"))
        moment = _parse_datetime(incoming.text.strip(), now, past=_looks_back(step))
        if moment is None:
            return Refused(Text("error.invalid_datetime"))
        earliest = now + timedelta(days=step.min_days_ahead)
        latest = now + timedelta(days=step.max_days_ahead)
        if not earliest <= moment <= latest:
            if _looks_back(step):
                return Refused(Text("error.datetime_past_range", {"days": -step.min_days_ahead}))
            return Refused(Text("error.datetime_range", {"days": step.max_days_ahead}))
        return Accepted(moment.isoformat())

    def validate(self, step: Step, value: Any) -> bool:
        try:
            return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            return False

    def describe(self, form_key: str, step: Step, value: Any) -> Text:
        return Text("answer.datetime", {"at": datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")})


def _looks_back(step: Step) -> bool:
    return step.max_days_ahead <= 0


def _parse_datetime(text: str, now: datetime, past: bool = False) -> datetime | None:
    for pattern in DATETIME_FORMATS:
        try:
            parsed = datetime.strptime(text, pattern)
        except ValueError:
            continue
        parsed = parsed.replace(tzinfo=now.tzinfo)
        if "%Y" not in pattern:
            parsed = parsed.replace(year=now.year)
            if past and parsed > now:
                parsed = parsed.replace(year=now.year - 1)
            elif not past and parsed < now:
                parsed = parsed.replace(year=now.year + 1)
        return parsed
    return None


def _slot_time(now: datetime, days: int, hour: int) -> datetime:
    day = (now + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=now.tzinfo)


class Files(KindHandler):
    """Photos and/or documents, collected one message at a time until Done."""

    kind = Kind.FILE

    def hint(self, step: Step) -> Text | None:
        return Text("hint.file", {"max": step.max_files})

    def read(self, step: Step, dialogue: Dialogue, incoming: Input, now: datetime) -> Reading:
        files = list(dialogue.pending)
        if isinstance(incoming, ButtonInput) and incoming.data == DONE:
            if not files:
                return Refused(Text("error.send_file"))
            return Accepted(files)
        if not isinstance(incoming, FileInput) or incoming.kind not in step.accept:
            return Refused(Text("error.send_file"))
        if len(files) >= step.max_files:
            return Refused(Text("error.too_many_files", {"max": step.max_files}))
        files.append({"kind": incoming.kind, "file_id": incoming.file_id, "name": incoming.name})
        receipt = Reply(
            (Text("dialog.file_received", {"count": len(files), "max": step.max_files}),),
            ((Button(Text("button.done"), DONE),),),
        )
        return Collected(tuple(files), receipt)

    def validate(self, step: Step, value: Any) -> bool:
        return (
            isinstance(value, list)
            and 1 <= len(value) <= step.max_files
            and all(isinstance(f, dict) and f.get("kind") in step.accept for f in value)
        )

    def describe(self, form_key: str, step: Step, value: Any) -> Text:
        return Text("answer.files", {"count": len(value)})


# ---- the registry -----------------------------------------------------------------------------------

HANDLERS: tuple[KindHandler, ...] = (
    Choice(),
    MultiChoice(),
    YesNo(),
    Rating(),
    Nps(),
    FreeText(),
    Phone(),
    Serial(),
    DateTime(),
    Files(),
)


def registry(handlers: tuple[KindHandler, ...]) -> dict[Kind, KindHandler]:
    """Kind -> handler; refuses a kind handled twice or not at all, so the gap shows at start-up."""
    by_kind: dict[Kind, KindHandler] = {}
    for handler in handlers:
        if handler.kind in by_kind:
            raise ValueError(f"question kind {handler.kind} has two handlers")
        by_kind[handler.kind] = handler
    missing = set(Kind) - set(by_kind)
    if missing:
        raise ValueError(f"question kinds without a handler: {sorted(missing)}")
    return by_kind


_BY_KIND = registry(HANDLERS)


def handler_for(kind: Kind) -> KindHandler:
    return _BY_KIND[kind]
