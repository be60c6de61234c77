"""Load and validate the form files; a broken file stops start-up with file, step and reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.dialogs.schema import Form

FORMS_DIR = Path(__file__).parent / "forms"
# libyaml's parser when PyYAML was built with it (a tenth of the pure-Python one's time at start-up); the
# same safe subset of YAML either way.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FormError(Exception):
    """A form file cannot be used; the message names the file, the step and the reason."""


@dataclass
class FormRegistry:
    """Every loaded version of every form; new dialogues use the latest version."""

    forms: dict[tuple[str, int], Form] = field(default_factory=dict)

    def add(self, form: Form, source: str) -> None:
        if (form.key, form.version) in self.forms:
            raise FormError(f"{source}: form {form.key} version {form.version} is defined twice")
        self.forms[(form.key, form.version)] = form

    def latest(self, key: str) -> Form:
        versions = [v for (k, v) in self.forms if k == key]
        if not versions:
            raise KeyError(f"no form {key!r}")
        return self.forms[(key, max(versions))]

    def get(self, key: str, version: int) -> Form | None:
        return self.forms.get((key, version))

    def keys(self) -> list[str]:
        return sorted({k for (k, _) in self.forms})

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.forms.values())


def load_form(path: Path) -> Form:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise FormError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise FormError(f"{path.name}: the file must hold one form (a mapping)")
    try:
        return Form.model_validate(raw)
    except ValidationError as exc:
        raise FormError(f"{path.name}: {_describe(exc, raw)}") from None


def load_forms(directory: Path = FORMS_DIR) -> FormRegistry:
    registry = FormRegistry()
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise FormError(f"{directory}: no form files")
    for path in files:
        registry.add(load_form(path), path.name)
    return registry


def _describe(exc: ValidationError, raw: dict[str, object]) -> str:
    error = exc.errors()[0]
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = raw.get("steps")
        key = None
        if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
            key = steps[loc[1]].get("key")
        where = f"step {key or '#' + str(loc[1] + 1)}"
        rest = [str(p) for p in loc[2:]]
        if rest:
            where += f" field {'.'.join(rest)}"
        where += ": "
    elif loc:
        where = f"field {'.'.join(str(p) for p in loc)}: "
    message = str(error["msg"]).removeprefix("Value error, ")
    return where + message
