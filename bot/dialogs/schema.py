"""The form file format: steps, question kinds, validation and branching.

A form is data (`bot/dialogs/forms/*.yaml`). Every user-facing text in it is a
key into the locale catalogs; when a form leaves a key out, the conventional one
is used: `form.<form>.<step>.prompt`, `.label` and `.<option value>`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STEP_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
OPTION_VALUE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,23}$")
DEFAULT_SERIAL_PATTERN = r"^[A-Z0-9][A-Z0-9\-]{5,31}$"


class Kind(StrEnum):
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    YES_NO = "yes_no"
    RATING = "rating"
    NPS = "nps"
    TEXT = "text"
    PHONE = "phone"
    SERIAL = "serial"
    DATETIME = "datetime"
    FILE = "file"


CHOICE_KINDS = {Kind.CHOICE, Kind.MULTI_CHOICE}


class Tips(BaseModel):
    """Troubleshooting tips shown with a step, chosen by an earlier choice answer."""

    model_config = ConfigDict(extra="forbid")

    by: str
    keys: dict[str, list[str]]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    kind: Kind
    required: bool = True
    prompt: str | None = None
    label: str | None = None
    options: list[str] = Field(default_factory=list)
    options_from: str | None = None
    when: dict[str, Any] = Field(default_factory=dict)
    tips: Tips | None = None
    min_length: int = 1
    max_length: int = 500
    pattern: str | None = None
    region: str = "CN"
    known_from: str | None = None
    accept: list[str] = Field(default_factory=lambda: ["photo", "document"])
    max_files: int = Field(default=5, ge=1, le=10)
    min_days_ahead: int = 0
    max_days_ahead: int = 60

    @field_validator("key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        if not STEP_KEY.match(value):
            raise ValueError("key must be lower_snake_case, at most 32 characters")
        return value

    @field_validator("options")
    @classmethod
    def _option_shape(cls, value: list[str]) -> list[str]:
        for option in value:
            if not OPTION_VALUE.match(option):
                raise ValueError(f"option {option!r} must be lower_snake_case, at most 24 characters")
        if len(set(value)) != len(value):
            raise ValueError("options repeat")
        return value

    @field_validator("accept")
    @classmethod
    def _accept_kinds(cls, value: list[str]) -> list[str]:
        unknown = set(value) - {"photo", "document"}
        if unknown or not value:
            raise ValueError("accept takes photo and/or document")
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> Step:
        if self.kind in CHOICE_KINDS and not self.options:
            raise ValueError(f"a {self.kind} question needs options")
        if self.kind not in CHOICE_KINDS and self.options:
            raise ValueError(f"a {self.kind} question takes no options")
        if self.options_from is not None and self.kind is not Kind.SERIAL:
            raise ValueError("options_from is only for serial questions")
        if self.min_length > self.max_length:
            raise ValueError("min_length is above max_length")
        if self.min_days_ahead > self.max_days_ahead:
            raise ValueError("min_days_ahead is above max_days_ahead")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from exc
        return self

    def prompt_key(self, form_key: str) -> str:
        return self.prompt or f"form.{form_key}.{self.key}.prompt"

    def label_key(self, form_key: str) -> str:
        return self.label or f"form.{form_key}.{self.key}.label"

    def option_key(self, form_key: str, option: str) -> str:
        return f"form.{form_key}.{self.key}.{option}"

    @property
    def serial_pattern(self) -> re.Pattern[str]:
        return re.compile(self.pattern or DEFAULT_SERIAL_PATTERN)


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    version: int = Field(ge=1)
    title: str | None = None
    outcome: str | None = None
    steps: list[Step]

    @field_validator("key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        if not STEP_KEY.match(value):
            raise ValueError("form key must be lower_snake_case")
        return value

    @model_validator(mode="after")
    def _references(self) -> Form:
        if not self.steps:
            raise ValueError("a form needs at least one step")
        seen: dict[str, Step] = {}
        for step in self.steps:
            if step.key in seen:
                raise ValueError(f"step {step.key}: the key is used twice")
            for ref, expected in step.when.items():
                _check_condition(step, seen.get(ref), ref, expected)
            if step.tips is not None:
                source = seen.get(step.tips.by)
                if source is None or source.kind is not Kind.CHOICE:
                    raise ValueError(f"step {step.key}: tips.by must name an earlier choice step")
                unknown = set(step.tips.keys) - set(source.options)
                if unknown:
                    raise ValueError(f"step {step.key}: tips for unknown options {sorted(unknown)}")
            seen[step.key] = step
        return self

    @property
    def title_key(self) -> str:
        return self.title or f"form.{self.key}.title"

    def step(self, key: str) -> Step:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    def text_keys(self) -> set[str]:
        """Every locale key this form shows, so a test can check both catalogs hold them."""
        keys = {self.title_key}
        for step in self.steps:
            keys.add(step.prompt_key(self.key))
            keys.add(step.label_key(self.key))
            keys.update(step.option_key(self.key, o) for o in step.options)
            if step.tips is not None:
                for tip_keys in step.tips.keys.values():
                    keys.update(tip_keys)
        return keys


def _check_condition(step: Step, source: Step | None, ref: str, expected: Any) -> None:
    if source is None:
        raise ValueError(f"step {step.key}: when refers to {ref!r}, which is not an earlier step")
    values = expected if isinstance(expected, list) else [expected]
    for value in values:
        if source.kind is Kind.YES_NO and not isinstance(value, bool):
            raise ValueError(f"step {step.key}: when {ref} must be true or false")
        if source.kind in CHOICE_KINDS and value not in source.options:
            raise ValueError(f"step {step.key}: when {ref} names unknown option {value!r}")
