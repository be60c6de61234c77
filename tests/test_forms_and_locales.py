"""Form files and locale catalogs: a broken form stops start-up; no text is missing in either language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.dialogs.loader import FormError, load_form, load_forms
from bot.i18n import Translator, catalog, locale_for

FORMS_DIR = Path(__file__).resolve().parent.parent / "bot" / "dialogs" / "forms"
PYTHON_KEYS = re.compile(r"""(?:say_text|t|Text)\(\s*["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""")


def test_both_catalogs_have_exactly_the_same_keys() -> None:
    zh, en = set(catalog("zh_CN")), set(catalog("en"))
    assert zh - en == set(), f"missing in en: {sorted(zh - en)}"
    assert en - zh == set(), f"missing in zh_CN: {sorted(en - zh)}"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_text_a_form_shows_is_in_the_catalog(locale: str) -> None:
    keys = set(catalog(locale))
    for form in load_forms():
        assert form.text_keys() - keys == set(), form.key


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_key_the_code_names_is_in_the_catalog(locale: str) -> None:
    keys = set(catalog(locale))
    root = Path(__file__).resolve().parent.parent / "bot"
    named = {m for path in root.rglob("*.py") for m in PYTHON_KEYS.findall(path.read_text(encoding="utf-8"))}
    assert named, "the scan found no keys at all"
    assert named - keys == set()


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_placeholders_match_between_languages(locale: str) -> None:
    other = "en" if locale == "zh_CN" else "zh_CN"
    field = re.compile(r"\{(\w+)\}")
    for key, text in catalog(locale).items():
        assert set(field.findall(text)) == set(field.findall(catalog(other)[key])), key


def test_language_follows_telegram_language_code() -> None:
    assert locale_for("zh-hans") == "zh_CN"
    assert locale_for("en-US") == "en"
    assert locale_for("ru") == "zh_CN"
    assert Translator("en")("button.yes") == "Yes"
    assert Translator("zh_CN")("button.yes") == "是"


def broken(tmp_path: Path, text: str) -> str:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FormError) as caught:
        load_form(path)
    return str(caught.value)


def test_a_broken_form_names_file_step_and_reason(tmp_path: Path) -> None:
    message = broken(
        tmp_path,
        "key: survey\nversion: 1\nsteps:\n  - key: score\n    kind: rating\n  - key: colour\n    kind: choice\n",
    )
    assert message.startswith("broken.yaml: step colour")
    assert "needs options" in message


def test_a_condition_on_an_unknown_step_is_refused(tmp_path: Path) -> None:
    message = broken(
        tmp_path,
        "key: survey\nversion: 1\nsteps:\n  - key: why\n    kind: text\n    when: {score: 1}\n",
    )
    assert "broken.yaml" in message and "why" in message and "score" in message


def test_an_unknown_question_kind_is_refused(tmp_path: Path) -> None:
    message = broken(tmp_path, "key: survey\nversion: 1\nsteps:\n  - key: q\n    kind: slider\n")
    assert "step q field kind" in message


def test_invalid_yaml_is_reported_with_the_file(tmp_path: Path) -> None:
    assert broken(tmp_path, "key: [unclosed\n").startswith("broken.yaml: not valid YAML")


def test_the_shipped_forms_load() -> None:
    registry = load_forms(FORMS_DIR)
    assert registry.latest("repair").steps[0].key == "terminal"
