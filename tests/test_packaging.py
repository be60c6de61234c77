"""The built wheel is the product: the bot's package and its data files, and no test kit."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a build must not copy from a working tree: a virtualenv, git, caches and earlier builds.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")


def can_build_offline() -> bool:
    """setuptools builds wheels by itself from 70.1 on; before that it needs the `wheel` package."""
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def build_wheel(tmp_path: Path) -> Path:
    # A copy, so the build's build/ and *.egg-info never land in the working tree.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out), "--quiet"]
    if can_build_offline():
        # The dev extra brings setuptools and wheel, so a fresh `make` environment builds without fetching.
        command.append("--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = out.glob("posbot-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_holds_the_bot_and_no_test_kit(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_wheel(tmp_path)) as wheel:
        names = set(wheel.namelist())
    packages = {name.split("/", 1)[0] for name in names if not name.startswith("posbot-")}
    assert packages == {"bot"}, f"top-level entries besides bot: {sorted(packages - {'bot'})}"
    assert not [name for name in names if "testing/" in name or "fake" in name.rsplit("/", 1)[-1]]
    for expected in (
        "bot/__init__.py",
        "bot/__main__.py",
        "bot/app.py",
        "bot/cli.py",
        "bot/followup_policy.toml",
        "bot/storage/migrations/env.py",
    ):
        assert expected in names, f"{expected} is missing from the wheel"
    assert any(name.startswith("bot/dialogs/forms/") and name.endswith(".yaml") for name in names)
    assert any(name.startswith("bot/storage/migrations/versions/") for name in names)
    # Every module of the bot package in the source tree is in the wheel.
    sources = {str(path.relative_to(ROOT)) for path in (ROOT / "bot").rglob("*.py")}
    assert sources <= names, f"missing from the wheel: {sorted(sources - names)[:10]}"
