"""The case lifecycle the staff desk works: every state and action, who may press what."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.cases import (
    ACTIONS,
    OPEN_STATES,
    ROLES,
    STATES,
    InvalidTransition,
    actions_for,
    canonical_severity,
    canonical_state,
    next_state,
    permitted,
    severity_for,
)

# The lifecycle written out by hand, independently of the module's table: (state, action) -> next state.
VALID = {
    ("new", "take"): "taken",
    ("reopened", "take"): "taken",
    ("new", "assign"): "taken",
    ("reopened", "assign"): "taken",
    ("taken", "assign"): "taken",
    ("visit_scheduled", "assign"): "visit_scheduled",
    ("in_progress", "assign"): "in_progress",
    ("waiting_parts", "assign"): "waiting_parts",
    ("taken", "schedule_visit"): "visit_scheduled",
    ("visit_scheduled", "schedule_visit"): "visit_scheduled",
    ("in_progress", "schedule_visit"): "visit_scheduled",
    ("waiting_parts", "schedule_visit"): "visit_scheduled",
    ("reopened", "schedule_visit"): "visit_scheduled",
    ("taken", "start_work"): "in_progress",
    ("visit_scheduled", "start_work"): "in_progress",
    ("waiting_parts", "start_work"): "in_progress",
    ("taken", "wait_parts"): "waiting_parts",
    ("visit_scheduled", "wait_parts"): "waiting_parts",
    ("in_progress", "wait_parts"): "waiting_parts",
    ("taken", "resolve_remote"): "resolved",
    ("in_progress", "resolve_remote"): "resolved",
    ("waiting_parts", "resolve_remote"): "resolved",
    ("visit_scheduled", "resolve_remote"): "resolved",
    ("reopened", "resolve_remote"): "resolved",
    ("visit_scheduled", "resolve_onsite"): "resolved",
    ("in_progress", "resolve_onsite"): "resolved",
    ("waiting_parts", "resolve_onsite"): "resolved",
    ("resolved", "close"): "closed",
    ("resolved", "reopen"): "reopened",
    ("closed", "reopen"): "reopened",
}


def test_the_lifecycle_knows_every_state_and_action_of_the_desk() -> None:
    assert set(STATES) == {s for s, _ in VALID} | set(VALID.values()) | {"new"}
    assert set(ACTIONS) == {a for _, a in VALID}
    assert set(OPEN_STATES) == {"new", "taken", "visit_scheduled", "in_progress", "waiting_parts", "reopened"}


@pytest.mark.parametrize(("state", "action"), list(itertools.product(STATES, ACTIONS)))
def test_every_pair_of_state_and_action_moves_the_case_or_is_refused(state: str, action: str) -> None:
    if (state, action) in VALID:
        assert next_state(state, action) == VALID[(state, action)]
    else:
        with pytest.raises(InvalidTransition) as refused:
            next_state(state, action)
        assert (refused.value.state, refused.value.action) == (state, action)


@pytest.mark.parametrize(("state", "action"), [("new", "fly"), ("archived", "take"), ("", "")])
def test_an_unknown_state_or_action_is_refused(state: str, action: str) -> None:
    with pytest.raises(InvalidTransition):
        next_state(state, action)


def test_a_ticket_stored_as_open_before_the_desk_existed_is_a_new_case() -> None:
    assert canonical_state("open") == "new"
    assert next_state("open", "take") == "taken"
    assert actions_for("open", "service") == actions_for("new", "service")


def test_severity_follows_whether_the_terminal_takes_payments() -> None:
    assert severity_for(False) == "urgent"
    assert severity_for("partly") == "partial"
    assert severity_for(True) == severity_for(None) == "normal"
    assert canonical_severity("high") == "urgent"  # written by the repair report before the desk
    with pytest.raises(ValueError):
        canonical_severity("critical")


@pytest.mark.parametrize("role", ["service", "aftersales", "sales"])
def test_only_a_supervisor_reassigns_a_case_or_reopens_a_closed_one(role: str) -> None:
    assert not permitted(role, "assign", "taken")
    assert not permitted(role, "reopen", "closed")
    assert permitted(role, "reopen", "resolved")
    assert permitted(role, "take", "new")
    assert permitted("supervisor", "assign", "taken")
    assert permitted("supervisor", "reopen", "closed")


def test_someone_without_a_staff_role_may_press_nothing() -> None:
    assert not any(permitted(role, action, "new") for role in ("", "merchant", "admin") for action in ACTIONS)


def test_a_policy_that_drops_a_supervisor_only_permission_lets_every_role_do_it() -> None:
    assert permitted("service", "assign", "new", supervisor_only={"reopen_closed"})
    assert not permitted("service", "reopen", "closed", supervisor_only={"reopen_closed"})


def test_the_buttons_of_a_case_message_fit_its_state_and_the_presser() -> None:
    assert actions_for("new", "service") == ("take",)
    assert actions_for("new", "supervisor") == ("take", "assign")
    assert actions_for("visit_scheduled", "aftersales") == (
        "schedule_visit",
        "start_work",
        "wait_parts",
        "resolve_remote",
        "resolve_onsite",
    )
    assert actions_for("resolved", "sales") == ("close", "reopen")
    assert actions_for("closed", "sales") == ()
    assert actions_for("closed", "supervisor") == ("reopen",)


@pytest.mark.parametrize(("state", "role"), list(itertools.product(STATES, ROLES)))
def test_every_button_shown_is_one_the_presser_may_press_and_the_state_allows(state: str, role: str) -> None:
    shown = actions_for(state, role)
    assert list(shown) == [a for a in ACTIONS if a in shown]  # the order of ACTIONS, whatever the state
    for action in ACTIONS:
        allowed = (state, action) in VALID and permitted(role, action, state)
        assert (action in shown) == allowed
