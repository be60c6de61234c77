"""Locale catalogs (`locales/*.toml`) and the rendering of engine texts into words.

zh_CN is the default; en the second language. A key missing at run time falls back
to the default language and then to the key itself (and is logged), so a
half-translated catalog never crashes a conversation; the test suite makes sure
that never ships.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bot.config import SUPPORTED_LOCALES
from bot.dialogs.engine import Text

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
log = logging.getLogger("posbot.i18n")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


@cache
def catalog(locale: str) -> dict[str, str]:
    """`locales/<locale>.toml` plus every file in `locales/<locale>/` (one per form family)."""
    files = [LOCALES_DIR / f"{locale}.toml", *sorted((LOCALES_DIR / locale).glob("*.toml"))]
    merged: dict[str, str] = {}
    for path in files:
        with path.open("rb") as handle:
            table = _flatten(tomllib.load(handle))
        clash = set(table) & set(merged)
        if clash:
            raise ValueError(f"{path.name}: keys defined twice: {sorted(clash)[:5]}")
        merged.update(table)
    return merged


def locale_for(language_code: str | None, default: str = "zh_CN") -> str:
    """Telegram's `language_code` (zh-hans, zh-CN, en-US...) to one of our locales."""
    if not language_code:
        return default
    code = language_code.lower()
    if code.startswith("zh"):
        return "zh_CN"
    if code.startswith("en"):
        return "en"
    return default


@dataclass(frozen=True)
class Translator:
    locale: str
    fallback: str = "zh_CN"

    def __post_init__(self) -> None:
        if self.locale not in SUPPORTED_LOCALES:
            object.__setattr__(self, "locale", self.fallback)

    def raw(self, key: str) -> str:
        found = catalog(self.locale).get(key)
        if found is None:
            log.error("missing locale key %s in %s", key, self.locale)
            found = catalog(self.fallback).get(key, key)
        return found

    def __call__(self, key: str, **params: Any) -> str:
        return self.text(Text(key, params))

    def text(self, text: Text) -> str:
        values = {name: self._value(value) for name, value in text.params.items()}
        template = self.raw(text.key)
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            log.error("locale key %s in %s does not fit its parameters", text.key, self.locale)
            return template

    def _value(self, value: Any) -> Any:
        if isinstance(value, Text):
            return self.text(value)
        if isinstance(value, list | tuple):
            return self.raw("list_separator").join(str(self._value(v)) for v in value)
        return value

    def lines(self, parts: tuple[Text, ...] | list[Text]) -> str:
        return "\n".join(self.text(p) for p in parts)
