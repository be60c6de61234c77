"""Start-up as an operator meets it: one line naming the setting when something is wrong, and a bot
that carries on when the Bot API refuses something it can do without."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Core
from bot.config import Settings, SettingsError, load_settings
from bot.testing.fake_bot_api import FakeBotAPI
from tests.conftest import STAFF_CHAT
from tests.telegram_harness import MERCHANT, TOKEN, Chat

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [name.upper() for name in Settings.model_fields]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(MERCHANT, first_name="Wang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[900001])
        yield server


def operator_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of an operator who set only these settings (English, staff chat known)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
            "STAFF_CHAT_ID": str(STAFF_CHAT),
            "DEFAULT_LOCALE": "en",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(settings)
    return env


def posbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input="",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def one_line_naming(result: subprocess.CompletedProcess[str], setting: str) -> str:
    """The whole of stderr is one line that names `setting`; the process failed."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert setting in lines[0]
    assert result.returncode != 0
    return lines[0]


# ---- a setting that cannot be used: one line, the setting named, a non-zero exit ---------------------


def test_an_unknown_log_level_stops_start_up_in_one_line(tmp_path: Path) -> None:
    result = posbot("run", env=operator_env(tmp_path, LOG_LEVEL="LOUD"))
    line = one_line_naming(result, "LOG_LEVEL")
    assert result.returncode == 2
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in line


def test_a_log_level_in_lower_case_is_understood(tmp_path: Path) -> None:
    assert load_settings(log_level="debug", _env_file=None).log_level == "DEBUG"


def test_a_plain_http_webhook_is_refused() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_URL.*https://"):
        load_settings(bot_token=TOKEN, webhook_url="http://bot.example.com/telegram", _env_file=None)
    https = load_settings(bot_token=TOKEN, webhook_url="https://bot.example.com/telegram", _env_file=None)
    assert https.webhook_url == "https://bot.example.com/telegram"


def test_a_self_hosted_bot_api_may_post_to_a_plain_http_webhook() -> None:
    # telegram-bot-api --local accepts http webhooks on its own network (the tests' fake does too).
    settings = load_settings(
        bot_token=TOKEN,
        telegram_api_base="http://127.0.0.1:8081",
        webhook_url="http://127.0.0.1:8080/telegram",
        _env_file=None,
    )
    assert settings.webhook_url == "http://127.0.0.1:8080/telegram"


def test_a_webhook_listen_address_without_a_port_is_refused() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_LISTEN"):
        load_settings(webhook_listen="0.0.0.0", _env_file=None)


# ---- privacy holds at every log level ----------------------------------------------------------------


async def test_at_debug_level_the_logs_hold_no_phone_no_merchant_words_and_no_token(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    log_path = tmp_path / "bot.log"
    env = operator_env(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_BASE=api.base_url, LOG_LEVEL="DEBUG")
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        await api.wait_for(lambda: api.call_count("getUpdates") > 0 or process.returncode is not None, timeout=300)
        assert process.returncode is None, log_path.read_text()
        chat = Chat(api)
        await chat.type("/repair")
        await chat.type("AB123456")
        await chat.press("Printing")
        await chat.press("No")
        await chat.type("the paper smells of burnt toast")
        await chat.press("Skip")
        await chat.press("No")
        await chat.press("Tomorrow morning", count=2)  # the question, then the share-my-number keyboard
        await chat.type("13912345678")
        assert "+8613912345678" in chat.last_text  # the summary: the phone reached the database
        await chat.press("✅ Submit")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=60)
    logged = log_path.read_text()
    assert " DEBUG " in logged  # the level really was DEBUG
    assert "13912345678" not in logged
    assert "burnt toast" not in logged
    assert TOKEN.split(":")[1] not in logged


async def test_a_database_error_never_carries_the_values_of_its_statement(core: Core) -> None:
    from sqlalchemy.exc import IntegrityError

    from bot.services.merchants import add_merchant

    now = core.clock.now()
    async with core.sessions() as session, session.begin():
        await add_merchant(session, name="Tea House", phone="13900002222", now=now, invite_code="TEA1")
    with pytest.raises(IntegrityError) as duplicate:
        async with core.sessions() as session, session.begin():
            await add_merchant(session, name="Tea Shop", phone="13900003333", now=now, invite_code="TEA1")
    # This message is what an error log prints.
    assert "13900003333" not in str(duplicate.value)
    assert "Tea Shop" not in str(duplicate.value)
