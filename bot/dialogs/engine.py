"""The dialogue engine: `(form, state, input, now) -> (state, replies, effects)`.

Pure: no I/O, no framework types, no clock of its own. The caller passes the
current time in, stores the state it gets back, sends the replies and applies the
effects (answers to SQL, the ticket...) in one transaction.

The next question is always "the first visible step without an answer", so Back,
Edit and branching all follow from one rule instead of a state machine per form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.dialogs.schema import Form, Kind, Step
from bot.domain.phones import normalize_phone
from bot.domain.privacy import mask_phone

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

SLOTS: dict[str, tuple[int, int]] = {"d1am": (1, 10), "d1pm": (1, 15), "d2am": (2, 10)}
DATETIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M", "%m-%d %H:%M", "%m/%d %H:%M")

Phase = Literal["asking", "summary", "choose_edit", "submitted", "cancelled", "abandoned"]
OPEN_PHASES = ("asking", "summary", "choose_edit")


# ---- values the engine hands out ---------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A locale key and its parameters; parameters may be Texts (or lists of them) too."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    label: Text
    data: str


@dataclass(frozen=True)
class Reply:
    parts: tuple[Text, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()
    # Replace the message whose button was pressed (multi-choice toggles) instead of sending anew.
    replace: bool = False
    # Offer Telegram's "share my phone number" keyboard with this message.
    request_contact: bool = False


@dataclass(frozen=True)
class AnswerSaved:
    step: str
    kind: str
    value: Any


@dataclass(frozen=True)
class AnswerRemoved:
    step: str


@dataclass(frozen=True)
class Submitted:
    answers: Mapping[str, Any]


@dataclass(frozen=True)
class Cancelled:
    pass


@dataclass(frozen=True)
class Abandoned:
    pass


Effect = AnswerSaved | AnswerRemoved | Submitted | Cancelled | Abandoned


# ---- inputs ---------------------------------------------------------------------------------


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


# ---- state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    form_key: str
    form_version: int
    phase: Phase
    answers: Mapping[str, Any]
    history: tuple[str, ...]
    current: str | None
    updated_at: datetime
    rev: int = 0
    pending: tuple[Any, ...] = ()
    editing: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.phase in OPEN_PHASES


@dataclass(frozen=True)
class Result:
    state: State
    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = ()


def state_to_dict(state: State) -> dict[str, Any]:
    return {
        "form_key": state.form_key,
        "form_version": state.form_version,
        "phase": state.phase,
        "answers": dict(state.answers),
        "history": list(state.history),
        "current": state.current,
        "updated_at": state.updated_at.isoformat(),
        "rev": state.rev,
        "pending": list(state.pending),
        "editing": state.editing,
        "context": dict(state.context),
    }


def state_from_dict(data: Mapping[str, Any]) -> State:
    return State(
        form_key=data["form_key"],
        form_version=int(data["form_version"]),
        phase=data["phase"],
        answers=dict(data["answers"]),
        history=tuple(data["history"]),
        current=data["current"],
        updated_at=datetime.fromisoformat(data["updated_at"]),
        rev=int(data["rev"]),
        pending=tuple(data.get("pending", ())),
        editing=bool(data.get("editing", False)),
        context=dict(data.get("context", {})),
    )


# ---- the public functions ---------------------------------------------------------------------


def start(form: Form, now: datetime, context: Mapping[str, Any] | None = None) -> Result:
    """Open a new dialogue on `form` and ask its first question."""
    state = State(
        form_key=form.key,
        form_version=form.version,
        phase="asking",
        answers={},
        history=(),
        current=None,
        updated_at=now,
        context=dict(context or {}),
    )
    return _advance(form, state, now, (), intro=(Text(form.title_key),))


def handle(form: Form, state: State, incoming: Input, now: datetime, abandon_after: timedelta) -> Result:
    """Take one input from the merchant."""
    if not state.is_open:
        return Result(state, (Reply((Text("dialog.closed"),)),))
    if now - state.updated_at > abandon_after:
        closed = replace(state, phase="abandoned", current=None, updated_at=now, rev=state.rev + 1)
        return Result(closed, (Reply((Text("dialog.expired"),)),), (Abandoned(),))
    if state.phase == "summary":
        return _on_summary(form, state, incoming, now)
    if state.phase == "choose_edit":
        return _on_choose_edit(form, state, incoming, now)
    return _on_question(form, state, incoming, now)


def cancel(state: State, now: datetime) -> Result:
    closed = replace(state, phase="cancelled", current=None, updated_at=now, rev=state.rev + 1)
    return Result(closed, (Reply((Text("dialog.cancelled"),)),), (Cancelled(),))


def reprompt(form: Form, state: State) -> tuple[Reply, ...]:
    """Ask the current question again (after /help, /status or an interruption)."""
    if state.phase == "summary":
        return (_summary(form, state),)
    if state.phase == "choose_edit":
        return (_edit_menu(form, state),)
    if state.phase == "asking" and state.current is not None:
        return _ask(form, state, form.step(state.current))
    return ()


def visible(step: Step, answers: Mapping[str, Any]) -> bool:
    """A step shows when every `when` condition holds on the answers given so far."""
    for ref, expected in step.when.items():
        if ref not in answers:
            return False
        given = answers[ref]
        wanted = expected if isinstance(expected, list) else [expected]
        if isinstance(given, list):
            if not any(g in wanted for g in given):
                return False
        elif given not in wanted:
            return False
    return True


def validate(step: Step, value: Any) -> bool:
    """Whether `value` is an acceptable stored answer for `step` (None means skipped)."""
    if value is None:
        return not step.required
    kind = step.kind
    if kind is Kind.CHOICE:
        return value in step.options
    if kind is Kind.MULTI_CHOICE:
        return (
            isinstance(value, list)
            and bool(value)
            and len(set(value)) == len(value)
            and all(v in step.options for v in value)
        )
    if kind is Kind.YES_NO:
        return isinstance(value, bool)
    if kind is Kind.RATING:
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
    if kind is Kind.NPS:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10
    if kind is Kind.TEXT:
        return isinstance(value, str) and step.min_length <= len(value.strip()) <= step.max_length
    if kind is Kind.PHONE:
        return isinstance(value, str) and normalize_phone(value, step.region) == value
    if kind is Kind.SERIAL:
        return isinstance(value, str) and bool(step.serial_pattern.match(value))
    if kind is Kind.DATETIME:
        try:
            return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            return False
    if kind is Kind.FILE:
        return (
            isinstance(value, list)
            and 1 <= len(value) <= step.max_files
            and all(isinstance(f, dict) and f.get("kind") in step.accept for f in value)
        )
    return False


def next_step(form: Form, answers: Mapping[str, Any]) -> Step | None:
    for step in form.steps:
        if step.key not in answers and visible(step, answers):
            return step
    return None


def answered_steps(form: Form, answers: Mapping[str, Any]) -> list[Step]:
    return [s for s in form.steps if s.key in answers and visible(s, answers)]


# ---- phases ---------------------------------------------------------------------------------------


def _on_question(form: Form, state: State, incoming: Input, now: datetime) -> Result:
    assert state.current is not None
    step = form.step(state.current)
    if isinstance(incoming, ButtonInput):
        if incoming.data == BACK:
            return _back(form, state, now)
        if incoming.data == SKIP and not step.required:
            return _accept(form, state, step, None, now)
        if incoming.data == SUMMARY and state.editing:
            return _advance(form, replace(state, pending=()), now, ())
    if step.kind is Kind.MULTI_CHOICE:
        return _on_multi_choice(form, state, step, incoming, now)
    if step.kind is Kind.FILE:
        return _on_file(form, state, step, incoming, now)
    value, problem = _read_value(step, state, incoming, now)
    if problem is not None:
        return _refuse(state, problem)
    return _accept(form, state, step, value, now)


def _on_multi_choice(form: Form, state: State, step: Step, incoming: Input, now: datetime) -> Result:
    if not isinstance(incoming, ButtonInput):
        return _refuse(state, Text("error.use_buttons"))
    chosen = list(state.pending)
    if incoming.data == DONE:
        if not chosen:
            return _refuse(state, Text("error.choose_at_least_one"))
        ordered = [o for o in step.options if o in chosen]
        return _accept(form, replace(state, pending=()), step, ordered, now)
    if incoming.data not in step.options:
        return _refuse(state, Text("error.use_buttons"))
    if incoming.data in chosen:
        chosen.remove(incoming.data)
    else:
        chosen.append(incoming.data)
    toggled = replace(state, pending=tuple(chosen), updated_at=now, rev=state.rev + 1)
    question = _ask(form, toggled, step)
    return Result(toggled, tuple(replace(r, replace=True) for r in question[-1:]))


def _on_file(form: Form, state: State, step: Step, incoming: Input, now: datetime) -> Result:
    files = list(state.pending)
    if isinstance(incoming, ButtonInput) and incoming.data == DONE:
        if not files:
            return _refuse(state, Text("error.send_file"))
        return _accept(form, replace(state, pending=()), step, files, now)
    if not isinstance(incoming, FileInput) or incoming.kind not in step.accept:
        return _refuse(state, Text("error.send_file"))
    if len(files) >= step.max_files:
        return _refuse(state, Text("error.too_many_files", {"max": step.max_files}))
    files.append({"kind": incoming.kind, "file_id": incoming.file_id, "name": incoming.name})
    collected = replace(state, pending=tuple(files), updated_at=now, rev=state.rev + 1)
    receipt = Reply(
        (Text("dialog.file_received", {"count": len(files), "max": step.max_files}),),
        ((Button(Text("button.done"), DONE),), *_nav_row(collected, step)),
    )
    return Result(collected, (receipt,))


def _on_summary(form: Form, state: State, incoming: Input, now: datetime) -> Result:
    if not isinstance(incoming, ButtonInput):
        return _refuse(state, Text("error.use_buttons"))
    if incoming.data == SUBMIT:
        done = replace(state, phase="submitted", current=None, updated_at=now, rev=state.rev + 1)
        return Result(done, (), (Submitted(dict(state.answers)),))
    if incoming.data == EDIT:
        menu = replace(state, phase="choose_edit", updated_at=now, rev=state.rev + 1)
        return Result(menu, (_edit_menu(form, menu),))
    if incoming.data == CANCEL:
        return cancel(state, now)
    return _refuse(state, Text("error.use_buttons"))


def _on_choose_edit(form: Form, state: State, incoming: Input, now: datetime) -> Result:
    if not isinstance(incoming, ButtonInput):
        return _refuse(state, Text("error.use_buttons"))
    if incoming.data == SUMMARY:
        back = replace(state, phase="summary", updated_at=now, rev=state.rev + 1)
        return Result(back, (_summary(form, back),))
    key = incoming.data.removeprefix(EDIT_PREFIX)
    editable = {s.key for s in answered_steps(form, state.answers)}
    if not incoming.data.startswith(EDIT_PREFIX) or key not in editable:
        return _refuse(state, Text("error.use_buttons"))
    step = form.step(key)
    pending: tuple[Any, ...] = ()
    if step.kind is Kind.MULTI_CHOICE and isinstance(state.answers.get(key), list):
        pending = tuple(state.answers[key])
    asking = replace(
        state,
        phase="asking",
        current=key,
        editing=True,
        pending=pending,
        updated_at=now,
        rev=state.rev + 1,
    )
    return Result(asking, _ask(form, asking, step))


# ---- moving between steps ---------------------------------------------------------------------------


def _accept(form: Form, state: State, step: Step, value: Any, now: datetime) -> Result:
    answers = dict(state.answers)
    answers[step.key] = value
    effects: list[Effect] = [AnswerSaved(step.key, step.kind.value, value)]
    # Answers to steps an earlier change has hidden no longer hold: drop them.
    for other in form.steps:
        if other.key in answers and not visible(other, answers):
            del answers[other.key]
            effects.append(AnswerRemoved(other.key))
    history = tuple(k for k in state.history if k in answers and k != step.key) + (step.key,)
    moved = replace(state, answers=answers, history=history, pending=())
    return _advance(form, moved, now, tuple(effects))


def _back(form: Form, state: State, now: datetime) -> Result:
    if state.editing:
        return _advance(form, replace(state, pending=()), now, ())
    if not state.history:
        return _refuse(state, Text("error.nothing_to_go_back_to"))
    previous = state.history[-1]
    answers = {k: v for k, v in state.answers.items() if k != previous}
    step = form.step(previous)
    pending: tuple[Any, ...] = ()
    if step.kind is Kind.MULTI_CHOICE and isinstance(state.answers.get(previous), list):
        pending = tuple(state.answers[previous])
    back = replace(
        state,
        answers=answers,
        history=state.history[:-1],
        current=previous,
        pending=pending,
        updated_at=now,
        rev=state.rev + 1,
    )
    return Result(back, _ask(form, back, step), (AnswerRemoved(previous),))


def _advance(
    form: Form,
    state: State,
    now: datetime,
    effects: tuple[Effect, ...],
    intro: tuple[Text, ...] = (),
) -> Result:
    step = next_step(form, state.answers)
    if step is None:
        at_summary = replace(state, phase="summary", current=None, editing=False, updated_at=now, rev=state.rev + 1)
        return Result(at_summary, _with_intro(intro, (_summary(form, at_summary),)), effects)
    asking = replace(state, phase="asking", current=step.key, updated_at=now, rev=state.rev + 1)
    return Result(asking, _with_intro(intro, _ask(form, asking, step)), effects)


def _refuse(state: State, problem: Text) -> Result:
    """Bad input changes nothing: one short line saying what is expected."""
    return Result(state, (Reply((problem,)),))


def _with_intro(intro: tuple[Text, ...], replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
    if not intro or not replies:
        return replies
    first = replies[0]
    return (replace(first, parts=intro + first.parts), *replies[1:])


# ---- reading one answer ---------------------------------------------------------------------------


def _read_value(step: Step, state: State, incoming: Input, now: datetime) -> tuple[Any, Text | None]:
    kind = step.kind
    if kind in (Kind.CHOICE, Kind.YES_NO, Kind.RATING, Kind.NPS):
        return _read_button_value(step, incoming)
    if kind is Kind.TEXT:
        if not isinstance(incoming, TextInput):
            return None, Text("error.type_text")
        text = incoming.text.strip()
        if len(text) > step.max_length:
            return None, Text("error.text_too_long", {"max": step.max_length, "got": len(text)})
        if len(text) < step.min_length:
            return None, Text("error.text_too_short", {"min": step.min_length})
        return text, None
    if kind is Kind.PHONE:
        return _read_phone(step, state, incoming)
    if kind is Kind.SERIAL:
        return _read_serial(step, state, incoming)
    if kind is Kind.DATETIME:
        return _read_datetime(step, incoming, now)
    return None, Text("error.use_buttons")


def _read_button_value(step: Step, incoming: Input) -> tuple[Any, Text | None]:
    low, high = (1, 5) if step.kind is Kind.RATING else (0, 10)
    if isinstance(incoming, TextInput) and step.kind in (Kind.RATING, Kind.NPS):
        text = incoming.text.strip()
        if text.isdigit() and low <= int(text) <= high:
            return int(text), None
        return None, Text("error.number_range", {"low": low, "high": high})
    if not isinstance(incoming, ButtonInput):
        return None, Text("error.use_buttons")
    data = incoming.data
    if step.kind is Kind.CHOICE and data in step.options:
        return data, None
    if step.kind is Kind.YES_NO and data in ("yes", "no"):
        return data == "yes", None
    if step.kind in (Kind.RATING, Kind.NPS) and data.isdigit() and low <= int(data) <= high:
        return int(data), None
    return None, Text("error.use_buttons")


def _read_phone(step: Step, state: State, incoming: Input) -> tuple[Any, Text | None]:
    if isinstance(incoming, ButtonInput) and incoming.data == KNOWN:
        known = state.context.get(step.known_from or "phone")
        if isinstance(known, str) and normalize_phone(known, step.region) == known:
            return known, None
        return None, Text("error.invalid_phone")
    if isinstance(incoming, ContactInput):
        if not incoming.own:
            return None, Text("error.not_own_contact")
        phone = normalize_phone(incoming.phone, step.region)
        return (phone, None) if phone else (None, Text("error.invalid_phone"))
    if not isinstance(incoming, TextInput):
        return None, Text("error.type_phone")
    phone = normalize_phone(incoming.text.strip(), step.region)
    return (phone, None) if phone else (None, Text("error.invalid_phone"))


def _terminals(step: Step, state: State) -> list[str]:
    if step.options_from is None:
        return []
    listed = state.context.get(step.options_from, [])
    return [str(s) for s in listed] if isinstance(listed, list) else []


def _read_serial(step: Step, state: State, incoming: Input) -> tuple[Any, Text | None]:
    if isinstance(incoming, ButtonInput) and incoming.data.startswith(TERMINAL_PREFIX):
        terminals = _terminals(step, state)
        index = incoming.data.removeprefix(TERMINAL_PREFIX)
        if index.isdigit() and int(index) < len(terminals):
            return terminals[int(index)], None
        return None, Text("error.use_buttons")
    if not isinstance(incoming, TextInput):
        return None, Text("error.type_serial")
    serial = re.sub(r"\s+", "", incoming.text).upper()
    if not step.serial_pattern.match(serial):
        return None, Text("error.invalid_serial")
    return serial, None


def _read_datetime(step: Step, incoming: Input, now: datetime) -> tuple[Any, Text | None]:
    if isinstance(incoming, ButtonInput) and incoming.data.startswith(SLOT_PREFIX):
        slot = SLOTS.get(incoming.data.removeprefix(SLOT_PREFIX))
        if slot is None:
            return None, Text("error.use_buttons")
        return _slot_time(now, *slot).isoformat(), None
    if not isinstance(incoming, TextInput):
        return None, Text("error.type_datetime")
    moment = _parse_datetime(incoming.text.strip(), now)
    if moment is None:
        return None, Text("error.invalid_datetime")
    earliest = now + timedelta(days=step.min_days_ahead)
    latest = now + timedelta(days=step.max_days_ahead)
    if not earliest <= moment <= latest:
        return None, Text("error.datetime_range", {"days": step.max_days_ahead})
    return moment.isoformat(), None


def _parse_datetime(text: str, now: datetime) -> datetime | None:
    for pattern in DATETIME_FORMATS:
        try:
            parsed = datetime.strptime(text, pattern)
        except ValueError:
            continue
        if "%Y" not in pattern:
            parsed = parsed.replace(year=now.year)
            if parsed.replace(tzinfo=now.tzinfo) < now:
                parsed = parsed.replace(year=now.year + 1)
        return parsed.replace(tzinfo=now.tzinfo)
    return None


def _slot_time(now: datetime, days: int, hour: int) -> datetime:
    day = (now + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=now.tzinfo)


# ---- what the merchant sees -------------------------------------------------------------------------


def _nav_row(state: State, step: Step) -> tuple[tuple[Button, ...], ...]:
    row: list[Button] = []
    if state.editing:
        row.append(Button(Text("button.back_to_summary"), SUMMARY))
    elif state.history:
        row.append(Button(Text("button.back"), BACK))
    if not step.required:
        row.append(Button(Text("button.skip"), SKIP))
    return (tuple(row),) if row else ()


def _ask(form: Form, state: State, step: Step) -> tuple[Reply, ...]:
    parts: list[Text] = []
    if step.tips is not None:
        chosen = state.answers.get(step.tips.by)
        tip_keys = step.tips.keys.get(str(chosen), [])
        if tip_keys:
            parts.append(Text("dialog.tips_header"))
            parts.extend(Text("dialog.tip_line", {"n": i, "tip": Text(k)}) for i, k in enumerate(tip_keys, 1))
    parts.append(Text(step.prompt_key(form.key)))
    rows = _answer_buttons(form, state, step)
    hint = _hint(step)
    if hint is not None:
        parts.append(hint)
    contact = step.kind is Kind.PHONE and not state.context.get(step.known_from or "phone")
    return (Reply(tuple(parts), rows + _nav_row(state, step), request_contact=contact),)


def _hint(step: Step) -> Text | None:
    hints = {
        Kind.TEXT: Text("hint.text", {"max": step.max_length}),
        Kind.PHONE: Text("hint.phone"),
        Kind.DATETIME: Text("hint.datetime"),
        Kind.FILE: Text("hint.file", {"max": step.max_files}),
        Kind.MULTI_CHOICE: Text("hint.multi_choice"),
    }
    if step.kind is Kind.SERIAL:
        return Text("hint.serial_or_pick" if step.options_from else "hint.serial")
    return hints.get(step.kind)


def _answer_buttons(form: Form, state: State, step: Step) -> tuple[tuple[Button, ...], ...]:
    kind = step.kind
    if kind is Kind.CHOICE:
        return _in_rows([Button(Text(step.option_key(form.key, o)), o) for o in step.options], 2)
    if kind is Kind.MULTI_CHOICE:
        chosen = set(state.pending)
        buttons = [
            Button(
                Text(
                    "button.toggle",
                    {
                        "mark": Text("mark.on" if o in chosen else "mark.off"),
                        "label": Text(step.option_key(form.key, o)),
                    },
                ),
                o,
            )
            for o in step.options
        ]
        return _in_rows(buttons, 2) + ((Button(Text("button.done"), DONE),),)
    if kind is Kind.YES_NO:
        return ((Button(Text("button.yes"), "yes"), Button(Text("button.no"), "no")),)
    if kind is Kind.RATING:
        return (tuple(Button(Text("button.rating", {"n": n}), str(n)) for n in range(1, 6)),)
    if kind is Kind.NPS:
        return (
            tuple(Button(Text("button.number", {"n": n}), str(n)) for n in range(0, 6)),
            tuple(Button(Text("button.number", {"n": n}), str(n)) for n in range(6, 11)),
        )
    if kind is Kind.SERIAL:
        serials = _terminals(step, state)
        return _in_rows(
            [Button(Text("button.terminal", {"serial": s}), f"{TERMINAL_PREFIX}{i}") for i, s in enumerate(serials)],
            1,
        )
    if kind is Kind.DATETIME:
        return (tuple(Button(Text(f"button.slot_{name}"), f"{SLOT_PREFIX}{name}") for name in SLOTS),)
    if kind is Kind.PHONE:
        known = state.context.get(step.known_from or "phone")
        if isinstance(known, str) and known:
            return ((Button(Text("button.use_known_phone", {"phone": mask_phone(known)}), KNOWN),),)
    return ()


def _in_rows(buttons: Sequence[Button], per_row: int) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


def describe(form: Form, step: Step, value: Any) -> Text:
    """How an answer reads back to the merchant (summary) or to staff."""
    if value is None:
        return Text("answer.skipped")
    kind = step.kind
    if kind is Kind.CHOICE:
        return Text(step.option_key(form.key, value))
    if kind is Kind.MULTI_CHOICE:
        return Text("answer.list", {"items": [Text(step.option_key(form.key, v)) for v in value]})
    if kind is Kind.YES_NO:
        return Text("button.yes" if value else "button.no")
    if kind is Kind.RATING:
        return Text("button.rating", {"n": value})
    if kind is Kind.FILE:
        return Text("answer.files", {"count": len(value)})
    if kind is Kind.DATETIME:
        return Text("answer.datetime", {"at": datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")})
    return Text("answer.raw", {"value": str(value)})


def _summary(form: Form, state: State) -> Reply:
    lines = [
        Text(
            "dialog.summary_line",
            {"label": Text(s.label_key(form.key)), "answer": describe(form, s, state.answers[s.key])},
        )
        for s in answered_steps(form, state.answers)
    ]
    return Reply(
        (Text("dialog.summary_header"), *lines),
        (
            (Button(Text("button.submit"), SUBMIT),),
            (Button(Text("button.edit"), EDIT), Button(Text("button.cancel"), CANCEL)),
        ),
    )


def _edit_menu(form: Form, state: State) -> Reply:
    buttons = [
        Button(Text(s.label_key(form.key)), f"{EDIT_PREFIX}{s.key}") for s in answered_steps(form, state.answers)
    ]
    return Reply(
        (Text("dialog.choose_edit"),),
        _in_rows(buttons, 2) + ((Button(Text("button.back_to_summary"), SUMMARY),),),
    )
