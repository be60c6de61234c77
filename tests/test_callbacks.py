"""The callback-data codec: what every button carries, and what a forged press cannot do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.delivery.callbacks import (
    MAX_BYTES,
    MAX_ID,
    CallbackData,
    CallOutcome,
    DialogueAnswer,
    FollowUpChoice,
    LanguageChoice,
    ResumeChoice,
    ShopSwitch,
    unpack,
)
from bot.services.registry import DuplicateRegistration, Registry

EVERY_KIND = [
    DialogueAnswer(7, "_e:category"),
    ResumeChoice("restart", 3),
    LanguageChoice("en"),
    FollowUpChoice(42, "later"),
    CallOutcome(42, "unreached"),
    ShopSwitch("switch", "abc234defg"),
]


@pytest.mark.parametrize("button", EVERY_KIND, ids=lambda b: type(b).__name__)
def test_every_button_comes_back_as_it_was_made(button: CallbackData) -> None:
    assert unpack(button.pack()) == button


def test_buttons_already_in_chats_keep_their_wire_format() -> None:
    assert FollowUpChoice(42, "start").pack() == "fu:42:start"
    assert CallOutcome(9, "reached").pack() == "st:9:reached"
    assert LanguageChoice("zh_CN").pack() == "lang:zh_CN"
    assert ResumeChoice("continue", 4).pack() == "resume:continue:4"
    assert DialogueAnswer(2, "_t:0").pack() == "d:2:_t:0"
    assert unpack("d:12:_e:phone") == DialogueAnswer(12, "_e:phone")


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "fu",
        "fu:",
        "fu:42",
        "fu:42:start:extra",
        "fu::start",
        "fu:42:explode",
        "fu:-1:start",
        "fu:+1:start",
        "fu: 1:start",
        "fu:01:start",
        "fu:1_000:start",
        f"fu:{MAX_ID + 1}:start",
        "fu:99999999999999999999999:start",
        "fu:²:start",
        "fu:١٢:start",  # Arabic-Indic digits: int() would take them
        "d:²:_skip",
        "d:1:",
        "d:1:caf\u00e9",
        "lang:fr",
        "lang:en:more",
        "resume:continue:x",
        "zz:1:2",
        "st:5:reached\n",
        "d:1:" + "a" * 61,  # 65 bytes
        "fu:1:start" + "\u0000",
    ],
)
def test_forged_data_does_not_decode(forged: str) -> None:
    assert unpack(forged) is None


def test_a_button_too_long_for_telegram_is_refused_when_made() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        DialogueAnswer(1, "_e:" + "x" * 60).pack()


@pytest.mark.parametrize(
    "bad",
    [
        FollowUpChoice(-1, "start"),
        FollowUpChoice(MAX_ID + 1, "start"),
        LanguageChoice("fr"),
        ShopSwitch("switch", "a b"),
        ResumeChoice("restart", True),
    ],  # type: ignore[arg-type]
)
def test_a_button_with_a_value_the_codec_cannot_carry_is_refused_when_made(bad: CallbackData) -> None:
    with pytest.raises(ValueError):
        bad.pack()


def test_a_prefix_can_be_taken_once() -> None:
    with pytest.raises(ValueError, match="taken"):

        class Again(CallbackData, prefix="fu"):
            pass


@given(st.text(max_size=80))
def test_any_text_decodes_or_is_refused_never_raises(data: str) -> None:
    decoded = unpack(data)
    assert decoded is None or len(decoded.pack().encode()) <= MAX_BYTES


@given(st.integers(min_value=0, max_value=MAX_ID), st.sampled_from(["start", "later", "stop"]))
def test_follow_up_buttons_round_trip_for_every_id(followup_id: int, action: str) -> None:
    button = FollowUpChoice(followup_id, action)  # type: ignore[arg-type]
    assert unpack(button.pack()) == button


def test_two_capabilities_cannot_claim_the_same_command_or_button() -> None:
    async def handler(*_: object) -> None:
        return None

    registry = Registry()
    registry.command("repair", handler)
    registry.button(FollowUpChoice, handler)
    registry.outcome("repair_ticket", handler)
    with pytest.raises(DuplicateRegistration, match="/repair"):
        registry.command("repair", handler)
    with pytest.raises(DuplicateRegistration, match="/repair"):
        registry.staff_command("repair", handler)  # type: ignore[arg-type]
    with pytest.raises(DuplicateRegistration, match="fu:"):
        registry.staff_button(FollowUpChoice, handler)  # type: ignore[arg-type]
    with pytest.raises(DuplicateRegistration, match="repair_ticket"):
        registry.outcome("repair_ticket", handler)
