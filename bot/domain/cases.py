"""The life of a case (a repair ticket, a complaint, a survey finding) as the staff desk works it.

Pure: states and actions are the strings stored in `tickets.status` and in the audit trail, so the
services layer can check a button press here before it touches the database. Documents 003 and
002 §3: a case is taken, routed, visited, repaired (or fixed remotely), closed, and reopened when
the merchant is still not satisfied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

State = Literal["new", "taken", "visit_scheduled", "in_progress", "waiting_parts", "resolved", "closed", "reopened"]
Action = Literal[
    "take",
    "assign",
    "schedule_visit",
    "start_work",
    "wait_parts",
    "resolve_remote",
    "resolve_onsite",
    "close",
    "reopen",
]
Role = Literal["service", "aftersales", "sales", "supervisor"]
# urgent: the terminal cannot take payments; partial: it takes some (one card type, one channel); normal: it can.
Severity = Literal["urgent", "partial", "normal"]

STATES: tuple[State, ...] = get_args(State)
# The order the buttons of a case message appear in.
ACTIONS: tuple[Action, ...] = get_args(Action)
ROLES: tuple[Role, ...] = get_args(Role)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

OPEN_STATES: frozenset[State] = frozenset(
    {"new", "taken", "visit_scheduled", "in_progress", "waiting_parts", "reopened"}
)
# Rows written before the desk existed.
LEGACY_STATES: dict[str, State] = {"open": "new"}
LEGACY_SEVERITIES: dict[str, Severity] = {"high": "urgent"}

# What a press needs beyond being staff. Reopening a closed case overrides a decision already made,
# so it is a permission of its own; "reports" is not a case action but belongs to the same list.
PERMISSIONS: tuple[str, ...] = ("assign", "reopen_closed", "reports")
SUPERVISOR_ONLY: frozenset[str] = frozenset(PERMISSIONS)

_TRANSITIONS: dict[str, tuple[frozenset[State], State | None]] = {
    "take": (frozenset({"new", "reopened"}), "taken"),
    # None: assigning a case whose work has started changes who does it, not how far it has got.
    "assign": (OPEN_STATES, None),
    "schedule_visit": (
        frozenset({"taken", "visit_scheduled", "in_progress", "waiting_parts", "reopened"}),
        "visit_scheduled",
    ),
    "start_work": (frozenset({"taken", "visit_scheduled", "waiting_parts"}), "in_progress"),
    "wait_parts": (frozenset({"taken", "visit_scheduled", "in_progress"}), "waiting_parts"),
    "resolve_remote": (
        frozenset({"taken", "in_progress", "waiting_parts", "visit_scheduled", "reopened"}),
        "resolved",
    ),
    "resolve_onsite": (frozenset({"visit_scheduled", "in_progress", "waiting_parts"}), "resolved"),
    "close": (frozenset({"resolved"}), "closed"),
    "reopen": (frozenset({"resolved", "closed"}), "reopened"),
}


class InvalidTransition(ValueError):
    """The action does not apply to a case in this state (a stale button, a double press)."""

    def __init__(self, state: str, action: str) -> None:
        super().__init__(f"cannot {action} a case that is {state}")
        self.state = state
        self.action = action


def canonical_state(status: str) -> State:
    """The state a stored status means; legacy "open" is "new"."""
    if status in LEGACY_STATES:
        return LEGACY_STATES[status]
    for state in STATES:
        if state == status:
            return state
    raise ValueError(f"unknown case state {status!r}")


def canonical_severity(stored: str) -> Severity:
    """The severity a stored value means; legacy "high" (cannot take payments) is "urgent"."""
    if stored in LEGACY_SEVERITIES:
        return LEGACY_SEVERITIES[stored]
    for severity in SEVERITIES:
        if severity == stored:
            return severity
    raise ValueError(f"unknown severity {stored!r}")


def severity_for(can_take_payments: bool | str | None) -> Severity:
    """The repair report's payments answer as a severity; no answer is treated as a working terminal.

    Form version 1 answered yes/no (a bool), version 2 chooses yes / partly / no.
    """
    if can_take_payments is False or can_take_payments == "no":
        return "urgent"
    if can_take_payments == "partly":
        return "partial"
    return "normal"


def next_state(state: str, action: str) -> State:
    """The state after `action`; refuses an action the state does not allow."""
    try:
        current = canonical_state(state)
    except ValueError:
        raise InvalidTransition(state, action) from None
    sources, target = _TRANSITIONS.get(action, (frozenset(), None))
    if current not in sources:
        raise InvalidTransition(state, action)
    if target is None:  # assign
        return "taken" if current in {"new", "reopened"} else current
    return target


def is_open(state: str) -> bool:
    return canonical_state(state) in OPEN_STATES


def permission_needed(action: str, state: str) -> str | None:
    """The permission a press needs beyond being staff, or None when any staff member may."""
    if action == "assign":
        return "assign"
    if action == "reopen" and canonical_state(state) == "closed":
        return "reopen_closed"
    return None


def permitted(role: str, action: str, state: str, supervisor_only: Iterable[str] = SUPERVISOR_ONLY) -> bool:
    """Whether `role` may press `action` on a case in `state`: who, not whether the state allows it."""
    if role not in ROLES:
        return False
    needed = permission_needed(action, state)
    return needed is None or needed not in set(supervisor_only) or role == "supervisor"


def actions_for(state: str, role: str, supervisor_only: Iterable[str] = SUPERVISOR_ONLY) -> tuple[Action, ...]:
    """The buttons a case message shows this role: actions the state allows and the role may press."""
    limits = frozenset(supervisor_only)
    found: list[Action] = []
    for action in ACTIONS:
        try:
            next_state(state, action)
        except InvalidTransition:
            continue
        if permitted(role, action, state, limits):
            found.append(action)
    return tuple(found)
