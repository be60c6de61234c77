"""The dialogue engine: `(form, state, input, now) -> (state, replies, effects)`.

Pure: no I/O, no framework types, no clock of its own. The caller passes the
current time in, stores the state it gets back, sends the replies and applies the
effects (answers to SQL, the ticket...) in one transaction.

The next question is always "the first visible step without an answer", so Back,
Edit and branching all follow from one rule instead of a state machine per form.
What differs between question kinds (buttons, reading input, checking and describing
an answer) lives in `bot.dialogs.kinds`, one class per kind; this module only moves
between steps and phases. The texts, buttons and inputs are in `bot.dialogs.messages`
and re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.dialogs.kinds import DATETIME_FORMATS as DATETIME_FORMATS
from bot.dialogs.kinds import SLOTS as SLOTS
from bot.dialogs.kinds import Collected, Refused, handler_for
from bot.dialogs.messages import BACK as BACK
from bot.dialogs.messages import CANCEL as CANCEL
from bot.dialogs.messages import DONE as DONE
from bot.dialogs.messages import EDIT as EDIT
from bot.dialogs.messages import EDIT_PREFIX as EDIT_PREFIX
from bot.dialogs.messages import KNOWN as KNOWN
from bot.dialogs.messages import SKIP as SKIP
from bot.dialogs.messages import SLOT_PREFIX as SLOT_PREFIX
from bot.dialogs.messages import SUBMIT as SUBMIT
from bot.dialogs.messages import SUMMARY as SUMMARY
from bot.dialogs.messages import TERMINAL_PREFIX as TERMINAL_PREFIX
from bot.dialogs.messages import Button as Button
from bot.dialogs.messages import ButtonInput as ButtonInput
from bot.dialogs.messages import ContactInput as ContactInput
from bot.dialogs.messages import FileInput as FileInput
from bot.dialogs.messages import Input as Input
from bot.dialogs.messages import OtherInput as OtherInput
from bot.dialogs.messages import Reply as Reply
from bot.dialogs.messages import Rows, in_rows
from bot.dialogs.messages import Text as Text
from bot.dialogs.messages import TextInput as TextInput
from bot.dialogs.schema import Form, Step

Phase = Literal["asking", "summary", "choose_edit", "submitted", "cancelled", "abandoned"]
OPEN_PHASES = ("asking", "summary", "choose_edit")


# ---- effects the caller applies ------------------------------------------------------------


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
    return handler_for(step.kind).validate(step, value)


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
    reading = handler_for(step.kind).read(step, state, incoming, now)
    if isinstance(reading, Refused):
        return _refuse(state, reading.problem)
    if isinstance(reading, Collected):
        return _collect(form, state, step, reading, now)
    return _accept(form, state, step, reading.value, now)


def _collect(form: Form, state: State, step: Step, reading: Collected, now: datetime) -> Result:
    """Part of an answer arrived (a choice ticked, a file sent): keep it pending and say so."""
    collected = replace(state, pending=reading.pending, updated_at=now, rev=state.rev + 1)
    if reading.receipt is None:
        question = _ask(form, collected, step)
        return Result(collected, tuple(replace(r, replace=True) for r in question[-1:]))
    receipt = replace(reading.receipt, buttons=reading.receipt.buttons + _nav_row(collected, step))
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
    asking = replace(
        state,
        phase="asking",
        current=key,
        editing=True,
        pending=handler_for(step.kind).resume(state.answers.get(key)),
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
    back = replace(
        state,
        answers=answers,
        history=state.history[:-1],
        current=previous,
        pending=handler_for(step.kind).resume(state.answers.get(previous)),
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


# ---- what the merchant sees -------------------------------------------------------------------------


def _nav_row(state: State, step: Step) -> Rows:
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
    handler = handler_for(step.kind)
    hint = handler.hint(step)
    if hint is not None:
        parts.append(hint)
    rows = handler.buttons(form.key, step, state) + _nav_row(state, step)
    return (Reply(tuple(parts), rows, request_contact=handler.offers_contact(step, state)),)


def describe(form: Form, step: Step, value: Any) -> Text:
    """How an answer reads back to the merchant (summary) or to staff."""
    if value is None:
        return Text("answer.skipped")
    return handler_for(step.kind).describe(form.key, step, value)


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
        in_rows(buttons, 2) + ((Button(Text("button.back_to_summary"), SUMMARY),),),
    )
