"""The dialogue engine on its own: no Telegram, no database, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.dialogs import engine, kinds
from bot.dialogs.engine import (
    AnswerRemoved,
    AnswerSaved,
    ButtonInput,
    ContactInput,
    FileInput,
    OtherInput,
    Result,
    Submitted,
    TextInput,
)
from bot.dialogs.loader import load_forms
from bot.dialogs.schema import Form, Kind

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=ZONE)
LONG = timedelta(hours=48)
FORMS = load_forms()
REPAIR = FORMS.latest("repair")
CONTEXT = {"terminals": ["AB123456", "CD987654"], "phone": "+8613812345678"}


def press(result: Result, data: str) -> Result:
    return engine.handle(REPAIR, result.state, ButtonInput(data), NOW, LONG)


def type_(result: Result, text: str) -> Result:
    return engine.handle(REPAIR, result.state, TextInput(text), NOW, LONG)


def buttons(result: Result) -> list[str]:
    return [b.data for reply in result.replies for row in reply.buttons for b in row]


def to_fixed_question() -> Result:
    r = engine.start(REPAIR, NOW, CONTEXT)
    r = press(r, "_t:0")
    r = press(r, "printing")
    r = press(r, "no")
    r = type_(r, "paper does not come out")
    return press(r, engine.SKIP)


def test_repair_report_asks_terminal_first_with_the_merchants_terminals_as_buttons() -> None:
    r = engine.start(REPAIR, NOW, CONTEXT)
    assert r.state.current == "terminal"
    assert [p.key for p in r.replies[0].parts][:2] == ["form.repair.title", "form.repair.terminal.prompt"]
    assert buttons(r) == ["_t:0", "_t:1"]


def test_typed_serial_is_normalised_and_a_bad_one_is_refused_without_change() -> None:
    r = engine.start(REPAIR, NOW, {})
    bad = type_(r, "ab")
    assert bad.state == r.state and bad.effects == ()
    assert bad.replies[0].parts[0].key == "error.invalid_serial"
    good = type_(r, " ab 1234 56 ")
    assert good.effects == (AnswerSaved("terminal", "serial", "AB123456"),)


def test_tips_for_the_chosen_category_come_with_did_that_fix_it() -> None:
    r = to_fixed_question()
    assert r.state.current == "fixed"
    keys = [p.params.get("tip").key for p in r.replies[0].parts if p.key == "dialog.tip_line"]  # type: ignore[union-attr]
    assert keys == ["tips.printing.paper", "tips.printing.cover", "tips.common.restart"]


def test_fixed_yes_goes_straight_to_the_summary_and_submit() -> None:
    r = press(to_fixed_question(), "yes")
    assert r.state.phase == "summary"
    assert "visit_time" not in r.state.answers
    done = press(r, engine.SUBMIT)
    assert done.state.phase == "submitted"
    (submitted,) = done.effects
    assert isinstance(submitted, Submitted) and submitted.answers["fixed"] is True


def test_fixed_no_asks_visit_time_and_offers_the_known_phone() -> None:
    r = press(to_fixed_question(), "no")
    assert r.state.current == "visit_time"
    r = press(r, "_s:d1am")
    assert r.state.answers["visit_time"] == "2026-11-25T10:00:00+08:00"
    assert r.state.current == "phone"
    assert "_known" in buttons(r)
    r = press(r, "_known")
    assert r.state.answers["phone"] == "+8613812345678"
    assert r.state.phase == "summary"


def test_phone_from_a_shared_contact_must_be_the_senders_own() -> None:
    r = press(press(to_fixed_question(), "no"), "_s:d1pm")
    refused = engine.handle(REPAIR, r.state, ContactInput("+8613900001111", own=False), NOW, LONG)
    assert refused.state == r.state
    assert refused.replies[0].parts[0].key == "error.not_own_contact"
    taken = engine.handle(REPAIR, r.state, ContactInput("13900001111", own=True), NOW, LONG)
    assert taken.state.answers["phone"] == "+8613900001111"


def test_invalid_phone_and_past_time_are_refused() -> None:
    r = press(to_fixed_question(), "no")
    assert type_(r, "2020-01-01 10:00").replies[0].parts[0].key == "error.datetime_range"
    r = type_(r, "2026-11-30 14:30")
    assert r.state.answers["visit_time"] == "2026-11-30T14:30:00+08:00"
    bad = type_(r, "12345")
    assert bad.replies[0].parts[0].key == "error.invalid_phone" and bad.state == r.state


def test_back_returns_to_the_previous_question_and_forgets_its_answer() -> None:
    r = engine.start(REPAIR, NOW, CONTEXT)
    r = press(press(r, "_t:1"), "network")
    back = press(r, engine.BACK)
    assert back.state.current == "category"
    assert "category" not in back.state.answers
    assert AnswerRemoved("category") in back.effects


def test_changing_fixed_in_the_summary_drops_the_visit_answers() -> None:
    r = press(to_fixed_question(), "no")
    r = press(press(r, "_s:d2am"), "_known")
    r = press(r, engine.EDIT)
    r = press(r, "_e:fixed")
    r = press(r, "yes")
    assert r.state.phase == "summary"
    assert "visit_time" not in r.state.answers and "phone" not in r.state.answers
    assert {AnswerRemoved("visit_time"), AnswerRemoved("phone")} <= set(r.effects)


def test_text_over_the_limit_is_refused_with_the_limit() -> None:
    r = press(press(press(engine.start(REPAIR, NOW, CONTEXT), "_t:0"), "other"), "yes")
    refused = type_(r, "x" * 501)
    assert refused.replies[0].parts[0] == engine.Text("error.text_too_long", {"max": 500, "got": 501})
    assert refused.state == r.state


def test_a_sticker_where_text_is_expected_is_refused() -> None:
    r = press(press(press(engine.start(REPAIR, NOW, CONTEXT), "_t:0"), "other"), "yes")
    refused = engine.handle(REPAIR, r.state, OtherInput("sticker"), NOW, LONG)
    assert refused.replies[0].parts[0].key == "error.type_text"
    assert refused.state == r.state


def test_photos_are_collected_until_done() -> None:
    r = press(press(press(engine.start(REPAIR, NOW, CONTEXT), "_t:0"), "other"), "yes")
    r = type_(r, "it beeps")
    r = engine.handle(REPAIR, r.state, FileInput("photo", "F1"), NOW, LONG)
    r = engine.handle(REPAIR, r.state, FileInput("document", "F2", "log.txt"), NOW, LONG)
    assert r.state.current == "photos" and len(r.state.pending) == 2
    r = press(r, engine.DONE)
    assert r.state.answers["photos"] == [
        {"kind": "photo", "file_id": "F1", "name": None},
        {"kind": "document", "file_id": "F2", "name": "log.txt"},
    ]


def test_a_dialogue_untouched_for_longer_than_the_limit_is_abandoned() -> None:
    r = engine.start(REPAIR, NOW, CONTEXT)
    late = engine.handle(REPAIR, r.state, ButtonInput("_t:0"), NOW + timedelta(hours=49), LONG)
    assert late.state.phase == "abandoned"
    assert late.effects == (engine.Abandoned(),)


def test_state_survives_a_round_trip_through_json() -> None:
    import json

    r = press(to_fixed_question(), "no")
    again = engine.state_from_dict(json.loads(json.dumps(engine.state_to_dict(r.state))))
    assert again == r.state


# ---- question kinds ---------------------------------------------------------------------------------


def test_every_question_kind_has_exactly_one_handler() -> None:
    handled = [h.kind for h in kinds.HANDLERS]
    assert sorted(handled) == sorted(Kind)
    for kind in Kind:
        assert kinds.handler_for(kind).kind is kind


def test_a_kind_handled_twice_or_not_at_all_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match="two handlers"):
        kinds.registry((*kinds.HANDLERS, kinds.Rating()))
    with pytest.raises(ValueError, match="without a handler"):
        kinds.registry(tuple(h for h in kinds.HANDLERS if h.kind is not Kind.NPS))


def ticks(result: Result) -> dict[str, str]:
    """Option value -> "mark.on"/"mark.off" as the multi-choice buttons show it."""
    return {
        b.data: b.label.params["mark"].key
        for reply in result.replies
        for row in reply.buttons
        for b in row
        if b.label.key == "button.toggle"
    }


def test_multi_choice_ticks_in_place_and_the_answer_keeps_the_forms_order() -> None:
    form = FORMS.latest("install_second")
    r = engine.start(form, NOW, CONTEXT)
    r = engine.handle(form, r.state, ButtonInput("yes"), NOW, LONG)
    assert r.state.current == "needs"
    for option in ("training", "upgrade", "none"):
        r = engine.handle(form, r.state, ButtonInput(option), NOW, LONG)
    r = engine.handle(form, r.state, ButtonInput("none"), NOW, LONG)  # a second press unticks
    (reply,) = r.replies
    assert reply.replace, "a tick edits the question message instead of sending a new one"
    assert [k for k, mark in ticks(r).items() if mark == "mark.on"] == ["upgrade", "training"]
    assert r.effects == ()
    r = engine.handle(form, r.state, ButtonInput(engine.DONE), NOW, LONG)
    assert r.effects == (AnswerSaved("needs", "multi_choice", ["upgrade", "training"]),)
    assert engine.describe(form, form.step("needs"), r.state.answers["needs"]) == engine.Text(
        "answer.list",
        {
            "items": [
                engine.Text("form.install_second.needs.upgrade"),
                engine.Text("form.install_second.needs.training"),
            ]
        },
    )
    # Back to the question: the earlier choices are still ticked, and Done with none ticked is refused.
    back = engine.handle(form, r.state, ButtonInput(engine.BACK), NOW, LONG)
    assert back.state.current == "needs"
    assert [k for k, mark in ticks(back).items() if mark == "mark.on"] == ["upgrade", "training"]
    for option in ("upgrade", "training"):
        back = engine.handle(form, back.state, ButtonInput(option), NOW, LONG)
    refused = engine.handle(form, back.state, ButtonInput(engine.DONE), NOW, LONG)
    assert refused.replies[0].parts[0].key == "error.choose_at_least_one" and refused.state == back.state


def test_ratings_and_nps_can_be_typed_but_only_within_their_scale() -> None:
    form = FORMS.latest("routine")
    r = engine.start(form, NOW, CONTEXT)
    r = engine.handle(form, r.state, ButtonInput("yes"), NOW, LONG)
    assert r.state.current == "attitude"
    assert buttons(r) == ["1", "2", "3", "4", "5", "_back"]
    out_of_scale = engine.handle(form, r.state, TextInput("0"), NOW, LONG)
    assert out_of_scale.replies[0].parts[0] == engine.Text("error.number_range", {"low": 1, "high": 5})
    r = engine.handle(form, r.state, TextInput(" 4 "), NOW, LONG)
    assert r.state.answers["attitude"] == 4
    for data in ("5", "3"):
        r = engine.handle(form, r.state, ButtonInput(data), NOW, LONG)
    r = engine.handle(form, r.state, ButtonInput("no"), NOW, LONG)
    assert r.state.current == "recommend"
    assert buttons(r)[:11] == [str(n) for n in range(11)]
    r = engine.handle(form, r.state, TextInput("０"), NOW, LONG)  # a full-width digit from a Chinese keyboard
    assert r.state.answers["recommend"] == 0


def test_a_visit_date_typed_without_a_year_means_the_next_such_day() -> None:
    december = datetime(2026, 12, 20, 10, 0, tzinfo=ZONE)

    def at_visit_time() -> Result:
        r = engine.start(REPAIR, december, CONTEXT)
        for data in ("_t:0", "printing", "no"):
            r = engine.handle(REPAIR, r.state, ButtonInput(data), december, LONG)
        r = engine.handle(REPAIR, r.state, TextInput("paper does not come out"), december, LONG)
        for data in (engine.SKIP, "no"):
            r = engine.handle(REPAIR, r.state, ButtonInput(data), december, LONG)
        assert r.state.current == "visit_time"
        return r

    r = engine.handle(REPAIR, at_visit_time().state, TextInput("01/05 09:30"), december, LONG)
    assert r.state.answers["visit_time"] == "2027-01-05T09:30:00+08:00"
    # Earlier today has passed, so today's date without a year means next year: too far ahead to book.
    refused = engine.handle(REPAIR, at_visit_time().state, TextInput("12-20 09:00"), december, LONG)
    assert refused.replies[0].parts[0] == engine.Text("error.datetime_range", {"days": 30})
    later_today = engine.handle(REPAIR, at_visit_time().state, TextInput("12-20 16:00"), december, LONG)
    assert later_today.state.answers["visit_time"] == "2026-12-20T16:00:00+08:00"


def test_a_superscript_digit_is_refused_like_any_other_wrong_answer() -> None:
    # "²".isdigit() holds but int("²") fails: such input used to raise instead of getting its refusal.
    form = FORMS.latest("routine")
    r = engine.start(form, NOW, CONTEXT)
    r = engine.handle(form, r.state, ButtonInput("yes"), NOW, LONG)
    assert r.state.current == "attitude"
    typed = engine.handle(form, r.state, TextInput("²"), NOW, LONG)
    assert typed.replies[0].parts[0] == engine.Text("error.number_range", {"low": 1, "high": 5})
    assert typed.state == r.state
    pressed = engine.handle(form, r.state, ButtonInput("²"), NOW, LONG)
    assert pressed.replies[0].parts[0].key == "error.use_buttons" and pressed.state == r.state
    start = engine.start(REPAIR, NOW, CONTEXT)
    terminal = engine.handle(REPAIR, start.state, ButtonInput("_t:²"), NOW, LONG)
    assert terminal.replies[0].parts[0].key == "error.use_buttons" and terminal.state == start.state


# ---- property: any input sequence, any form --------------------------------------------------------

texts = st.one_of(
    st.text(max_size=600),
    st.sampled_from(["13812345678", "+86 138 1234 5678", "AB123456", "2026-12-01 10:00", "3", "11", "yes"]),
)


def inputs_for(result: Result) -> st.SearchStrategy[engine.Input]:
    shown = buttons(result)
    return st.one_of(
        st.builds(TextInput, texts),
        st.builds(ButtonInput, st.sampled_from(shown) if shown else st.just("_back")),
        st.builds(
            ButtonInput,
            st.sampled_from(
                [
                    "_back",
                    "_skip",
                    "_done",
                    "_submit",
                    "_edit",
                    "_summary",
                    "_known",
                    "_t:9",
                    "_s:xx",
                    "zzz",
                    "0",
                    "5",
                    "10",
                ]
            ),
        ),
        st.builds(FileInput, st.sampled_from(["photo", "document"]), st.text(min_size=1, max_size=10)),
        st.builds(ContactInput, st.sampled_from(["13812345678", "123", "+8613900001111"]), st.booleans()),
        st.builds(OtherInput, st.sampled_from(["sticker", "voice", "location"])),
    )


def check(form: Form, result: Result) -> None:
    for effect in result.effects:
        if isinstance(effect, AnswerSaved):
            assert engine.validate(form.step(effect.step), effect.value), effect
    for key, value in result.state.answers.items():
        assert engine.validate(form.step(key), value), (key, value)


@pytest.mark.parametrize("form_key", FORMS.keys())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_inputs_never_raise_and_never_store_an_invalid_answer(form_key: str, data: st.DataObject) -> None:
    form = FORMS.latest(form_key)
    result = engine.start(form, NOW, CONTEXT)
    check(form, result)
    for _ in range(data.draw(st.integers(min_value=1, max_value=40))):
        if not result.state.is_open:
            break
        incoming = data.draw(inputs_for(result))
        result = engine.handle(form, result.state, incoming, NOW, LONG)
        check(form, result)
