"""Commands that never talk to Telegram start without aiogram (whose import alone costs seconds and
tens of MiB): each runs as an operator runs it, in a child process that reports what it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import app

ROOT = Path(__file__).resolve().parent.parent

# Runs the CLI as `posbot` would, then writes the top-level packages it imported to the file in argv[1].
PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted({m.split(".")[0] for m in sys.modules}))))
from bot.cli import app
app(sys.argv[1:], prog_name="posbot")
"""

CSV = "serial,merchant,installed_at,merchant_name\nCD654321,13900001111,2026-11-20,Tea\n"


def imported_by(tmp_path: Path, *args: str, stdin: str = "") -> set[str]:
    report = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "STAFF_CHAT_ID", "DATABASE_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'bot.sqlite3'}", DEFAULT_LOCALE="en")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(report.read_text()))


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("--help",), ""),
        (("chat",), "/help\n/repair\n"),
        (("run",), "/help\n"),  # no token: the terminal chat
        (("forms", "--graph"), ""),
        (("schedule-preview", "--event", "installation", "--at", "2026-11-20T15:00"), ""),
        (("db", "upgrade"), ""),
        (("merchants", "add", "--name", "Lucky Noodles", "--phone", "13812345678", "--terminal", "AB123456"), ""),
        (
            ("import", "installations", "-"),
            CSV,
        ),
        (("report", "--format", "json"), ""),
        (("export", "--format", "csv", "--output", "exported"), ""),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else None,
)
def test_a_command_that_does_not_talk_to_telegram_does_not_import_aiogram(
    tmp_path: Path, args: tuple[str, ...], stdin: str
) -> None:
    modules = imported_by(tmp_path, *args, stdin=stdin)
    assert "aiogram" not in modules
    assert "aiohttp" not in modules


def test_no_command_but_run_imports_aiogram_to_show_its_help(tmp_path: Path) -> None:
    """Commands added later (reports, exports...) are held to the same rule, at least up to their help."""
    names = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands if c.callback]
    names += [g.name for g in app.registered_groups if g.name]
    assert "chat" in names
    for name in names:
        if name != "run":
            assert "aiogram" not in imported_by(tmp_path, name, "--help"), name


def test_help_imports_neither_the_database_nor_the_scheduler(tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "--help")
    assert not modules & {"aiogram", "sqlalchemy", "alembic", "apscheduler", "aiosqlite", "asyncpg"}


def test_a_second_start_on_a_database_at_the_latest_migration_does_not_load_alembic(tmp_path: Path) -> None:
    assert "alembic" in imported_by(tmp_path, "chat", stdin="/help\n")  # the first start migrates
    assert "alembic" not in imported_by(tmp_path, "chat", stdin="/help\n")


def test_the_latest_migration_read_from_the_files_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from bot.storage.db import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
