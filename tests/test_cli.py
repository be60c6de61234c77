"""The command line as an operator uses it: the terminal chat, settings errors, the CSV import."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def posbot(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "STAFF_CHAT_ID", "DATABASE_URL")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean,
        cwd=cwd,
        timeout=120,
    )


def test_help_in_the_terminal_chat_lists_the_commands(tmp_path: Path) -> None:
    result = posbot("chat", stdin="/help\n", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"})
    assert result.returncode == 0, result.stderr
    for command in ("/repair", "/status", "/cancel", "/language"):
        assert command in result.stdout


def test_a_repair_report_completed_in_the_terminal_leaves_a_ticket_and_a_staff_notice(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}", "DEFAULT_LOCALE": "en"}
    added = posbot(
        "merchants", "add", "--name", "Lucky Noodles", "--phone", "13812345678", "--terminal", "AB123456:P300", env=env
    )
    assert added.returncode == 0, added.stderr
    code = added.stdout.split("invite code ")[1].split()[0]
    assert f"/start {code}" in added.stdout
    conversation = "\n".join(
        [f"/start {code}", "/repair", "1", "Printing", "3", "paper jams", "Skip", "2", "1", "1", "1"]
    )
    result = posbot("chat", stdin=conversation + "\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "Welcome, Lucky Noodles!" in result.stdout
    assert "Your ticket is R-" in result.stdout
    assert "[staff chat] 🔧" in result.stdout or "[staff chat]" in result.stdout
    assert "138****5678" in result.stdout
    with sqlite3.connect(database) as db:
        rows = db.execute("select serial, status, severity from tickets").fetchall()
    assert rows == [("AB123456", "new", "urgent")]


def test_run_without_a_token_says_so_in_one_line_and_opens_the_terminal_chat(tmp_path: Path) -> None:
    result = posbot("run", stdin="/help\n", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"})
    assert result.returncode == 0
    assert result.stderr.count("BOT_TOKEN") == 1
    assert "/repair" in result.stdout


def test_a_malformed_setting_stops_start_up_naming_it_and_never_prints_the_token(tmp_path: Path) -> None:
    result = posbot("run", env={"STAFF_CHAT_ID": "staff-group", "BOT_TOKEN": "999:SECRET-TOKEN"})
    assert result.returncode == 2
    assert "STAFF_CHAT_ID" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "SECRET-TOKEN" not in result.stderr + result.stdout


def test_importing_installations_lists_bad_rows_and_a_second_import_changes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}", "DEFAULT_LOCALE": "en"}
    posbot("merchants", "add", "--name", "Tea House", "--phone", "13900002222", env=env)
    csv = tmp_path / "installations.csv"
    csv.write_text(
        "serial,merchant,model,installed_at,merchant_name\n"
        "TH000001,13900002222,P300,2026-11-20 15:00,\n"
        "XX,13900002222,P300,2026-11-20,\n"
        "NB000002,13700003333,A8,2026-11-21,New Bakery\n"
        "NB000003,nosuchcode,A8,2026-11-21,\n"
        "NB000004,13700003333,A8,,New Bakery\n",
        encoding="utf-8",
    )
    first = posbot("import", "installations", str(csv), env=env)
    assert first.returncode == 1
    assert "imported 2, unchanged 0, errors 3" in first.stdout
    assert "line 3:" in first.stderr and "line 5:" in first.stderr and "line 6:" in first.stderr
    with sqlite3.connect(database) as db:
        before = db.execute("select count(*) from followups").fetchone()[0]
    second = posbot("import", "installations", str(csv), env=env)
    assert "imported 0, unchanged 2, errors 3" in second.stdout
    with sqlite3.connect(database) as db:
        after = db.execute("select count(*) from followups").fetchone()[0]
        merchants = db.execute("select name from merchants order by id").fetchall()
    assert before == after == 4
    assert merchants == [("Tea House",), ("New Bakery",)]
