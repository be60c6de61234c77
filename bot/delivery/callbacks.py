"""Callback data: every button the bot makes is encoded here, and every press decoded here.

Telegram carries 1-64 bytes of data on an inline button and hands them back when it
is pressed. Anyone can send any bytes back (an old client, a forged query), so
decoding is strict: a known prefix, the right number of fields, ids in ASCII digits
within the database's range, words from a fixed set. What does not decode is
`None`, which the caller answers with "this button is no longer valid"; it never
raises. The wire format is `prefix:field:field`, so buttons already sitting in
people's chats keep working across releases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

from bot.domain.cases import Action

MAX_BYTES = 64  # Bot API: callback_data is 1-64 bytes
MAX_ID = 2**31 - 1  # ids and revisions are 32-bit integer columns
_NUMBER = re.compile(r"(0|[1-9][0-9]{0,9})")  # ASCII only: str.isdigit() also takes '²' and '٣'
_WORD = re.compile(r"[A-Za-z0-9_.\-]+")
_TAIL = re.compile(r"[A-Za-z0-9_.\-:]+")  # the last field may carry colons (a dialogue's `_e:step`)


class CallbackData:
    """A button's data with typed fields; subclasses are frozen dataclasses with a unique prefix."""

    prefix: ClassVar[str]
    _kinds: ClassVar[dict[str, type[CallbackData]]] = {}

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix in CallbackData._kinds or not _WORD.fullmatch(prefix):
            raise ValueError(f"callback prefix {prefix!r} is taken or malformed")
        cls.prefix = prefix
        CallbackData._kinds[prefix] = cls

    def pack(self) -> str:
        """The data to put on a button; refuses what Telegram or `unpack` would not take back."""
        spec = _spec(type(self))
        parts = [self.prefix]
        for index, (name, hint) in enumerate(spec):
            value = getattr(self, name)
            text = _encode(hint, value, last=index == len(spec) - 1)
            if text is None:
                raise ValueError(f"{type(self).__name__}.{name}: {value!r} cannot be sent as callback data")
            parts.append(text)
        data = ":".join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data {data!r} is longer than {MAX_BYTES} bytes")
        return data


def unpack(data: str | None) -> CallbackData | None:
    """The button that `data` names, or None for anything malformed, oversized, unknown or out of range."""
    if not data or len(data.encode("utf-8", "replace")) > MAX_BYTES:
        return None
    prefix, _, rest = data.partition(":")
    kind = CallbackData._kinds.get(prefix)
    if kind is None:
        return None
    spec = _spec(kind)
    raw = rest.split(":", len(spec) - 1) if spec else []
    if len(raw) != len(spec) or (not spec and rest):
        return None
    values = {}
    for index, ((name, hint), text) in enumerate(zip(spec, raw, strict=True)):
        value = _decode(hint, text, last=index == len(spec) - 1)
        if value is None:
            return None
        values[name] = value
    return kind(**values)


_SPECS: dict[type[CallbackData], tuple[tuple[str, Any], ...]] = {}


def _spec(kind: type[CallbackData]) -> tuple[tuple[str, Any], ...]:
    """Each field's name and type, in wire order (read once per kind: resolving hints is slow)."""
    spec = _SPECS.get(kind)
    if spec is None:
        hints = get_type_hints(kind)
        spec = _SPECS[kind] = tuple((f.name, hints[f.name]) for f in fields(kind))  # type: ignore[arg-type]
    return spec


def _encode(hint: Any, value: Any, *, last: bool) -> str | None:
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID
        return str(value) if ok else None
    if get_origin(hint) is Literal:
        return value if value in get_args(hint) else None
    if hint is str and isinstance(value, str) and (_TAIL if last else _WORD).fullmatch(value):
        return value
    return None


def _decode(hint: Any, text: str, *, last: bool) -> Any:
    if hint is int:
        return int(text) if _NUMBER.fullmatch(text) and int(text) <= MAX_ID else None
    if get_origin(hint) is Literal:
        return text if text in get_args(hint) else None
    if hint is str:
        return text if (_TAIL if last else _WORD).fullmatch(text) else None
    return None


# ---- the bot's buttons: one line each, the prefix on the wire ------------------------------------


@dataclass(frozen=True)
class DialogueAnswer(CallbackData, prefix="d"):
    """An answer button of an open dialogue; a revision other than the dialogue's is a stale press."""

    rev: int
    value: str


@dataclass(frozen=True)
class ResumeChoice(CallbackData, prefix="resume"):
    """Continue a half-done form, or start it over."""

    action: Literal["continue", "restart"]
    rev: int


@dataclass(frozen=True)
class LanguageChoice(CallbackData, prefix="lang"):
    locale: Literal["zh_CN", "en"]


@dataclass(frozen=True)
class FollowUpChoice(CallbackData, prefix="fu"):
    """The merchant's Start / Later / Stop on a follow-up invitation."""

    followup_id: int
    action: Literal["start", "later", "stop"]


@dataclass(frozen=True)
class CallOutcome(CallbackData, prefix="st"):
    """Staff's "reached / not reached" on a call task."""

    followup_id: int
    result: Literal["reached", "unreached"]


@dataclass(frozen=True)
class ShopSwitch(CallbackData, prefix="shop"):
    """A merchant linked to one shop answers whether to link this chat to another (named by its invite code)."""

    action: Literal["switch", "keep"]
    code: str


@dataclass(frozen=True)
class CaseButton(CallbackData, prefix="cs"):
    """A button on a case message in the staff group: a lifecycle action, or a tool (call, photos)."""

    ticket_id: int
    action: Literal[Action, "call", "photos"]  # nested Literals flatten: every lifecycle action, and the tools


@dataclass(frozen=True)
class AssignTo(CallbackData, prefix="ca"):
    """A supervisor's choice of who takes a case over."""

    ticket_id: int
    staff_id: int


@dataclass(frozen=True)
class VisitSlot(CallbackData, prefix="vs"):
    """Staff's choice of an appointment time for a case's on-site visit (minutes since 1970, UTC)."""

    ticket_id: int
    at: int


@dataclass(frozen=True)
class VisitAnswer(CallbackData, prefix="va"):
    """The merchant's answer to an offered visit; `at` names the offer, so an answer to an older one is stale."""

    ticket_id: int
    at: int
    answer: Literal["confirm", "another"]


@dataclass(frozen=True)
class CallTask(CallbackData, prefix="ct"):
    """A call task: take the call (the number comes privately), then record the answers in that direct chat."""

    followup_id: int
    action: Literal["take", "record"]


@dataclass(frozen=True)
class FindingAction(CallbackData, prefix="fd"):
    """Under a survey finding's case: open a repair ticket for the merchant."""

    ticket_id: int
    action: Literal["repair"]


@dataclass(frozen=True)
class EnquiryChoice(CallbackData, prefix="eq"):
    """The merchant's Yes / No to "send this to our service team?"; `draft` names the texts offered."""

    draft: int
    answer: Literal["send", "drop"]


# What a complaint's staff may propose, and a merchant may ask for (the complaint form's "outcome wanted").
ComplaintOutcome = Literal["replacement", "refund", "explanation", "apology", "other"]


@dataclass(frozen=True)
class ComplaintWork(CallbackData, prefix="cw"):
    """Staff's tools on a complaint's case message; "outcome" is the kind of solution chosen after "propose"."""

    ticket_id: int
    action: Literal["ask", "propose", "outcome", "expect", "serious"]
    outcome: Literal["none", ComplaintOutcome] = "none"


@dataclass(frozen=True)
class ComplaintAnswer(CallbackData, prefix="cp"):
    """The merchant's answer to a proposed solution; `proposal` names it (its audit event), so an older one is stale."""

    ticket_id: int
    proposal: int
    answer: Literal["accept", "reject"]


@dataclass(frozen=True)
class ComplaintOffer(CallbackData, prefix="cf"):
    """The "File a complaint" button a merchant is offered after a low survey rating (on that survey)."""

    submission_id: int
