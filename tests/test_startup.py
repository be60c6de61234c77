"""Start-up as an operator meets it: one line naming the setting when something is wrong, and a bot
that carries on when the Bot API refuses something it can do without."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from bot.app import Core
from bot.config import Settings, SettingsError, StartupError, load_settings
from bot.i18n import Translator
from bot.telegram_app import make_bot, run_telegram, set_commands
from tests.conftest import PG_URL, STAFF_CHAT
from tests.fakes import FakeBotAPI
from tests.telegram_harness import MERCHANT, TOKEN, Chat, telegram_settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [name.upper() for name in Settings.model_fields]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(MERCHANT, first_name="Wang", language_code="en")
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[900001])
        yield server


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


async def posbot_beside(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`posbot` as a child process while this event loop keeps serving the fake Bot API."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return subprocess.CompletedProcess(list(args), process.returncode, out.decode(), err.decode())


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


def test_a_database_that_does_not_exist_is_named_in_one_line(tmp_path: Path) -> None:
    absent = PG_URL.rsplit("/", 1)[0] + "/posbot_no_such_database"
    result = posbot("run", env=operator_env(tmp_path, DATABASE_URL=absent, BOT_TOKEN=TOKEN))
    line = one_line_naming(result, "DATABASE_URL")
    assert "posbot_no_such_database" in line
    assert result.returncode == 1


def test_a_database_server_refusing_connections_is_named_in_one_line_by_the_terminal_chat(tmp_path: Path) -> None:
    url = f"postgresql://posbot:hunter2@127.0.0.1:{closed_port()}/posbot"
    result = posbot("chat", env=operator_env(tmp_path, DATABASE_URL=url))
    line = one_line_naming(result, "DATABASE_URL")
    assert "Connect call failed" in line
    assert "hunter2" not in line  # the password is masked


def test_a_sqlite_file_whose_folder_cannot_be_made_is_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    url = f"sqlite:///{tmp_path / 'not-a-folder' / 'bot.sqlite3'}"
    result = posbot("chat", env=operator_env(tmp_path, DATABASE_URL=url))
    assert "not-a-folder" in one_line_naming(result, "DATABASE_URL")


def test_a_missing_policy_file_is_named_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "my-policy.toml"
    result = posbot("run", env=operator_env(tmp_path, FOLLOWUP_POLICY=str(missing), BOT_TOKEN=TOKEN))
    line = one_line_naming(result, "FOLLOWUP_POLICY")
    assert f"{missing}: No such file or directory" in line
    assert result.returncode == 2


def test_a_broken_policy_file_is_named_in_one_line_by_the_terminal_chat(tmp_path: Path) -> None:
    broken = tmp_path / "policy.toml"
    broken.write_text("[install_first\nform = ")
    result = posbot("chat", env=operator_env(tmp_path, FOLLOWUP_POLICY=str(broken)))
    assert "policy.toml" in one_line_naming(result, "FOLLOWUP_POLICY")


def test_the_one_line_speaks_the_deployments_language(tmp_path: Path) -> None:
    missing = tmp_path / "policy.toml"
    result = posbot("chat", env=operator_env(tmp_path, FOLLOWUP_POLICY=str(missing), DEFAULT_LOCALE="zh_CN"))
    assert "回访策略无法使用" in one_line_naming(result, "FOLLOWUP_POLICY")


def test_a_malformed_token_is_named_in_one_line_and_never_printed(tmp_path: Path) -> None:
    result = posbot("run", env=operator_env(tmp_path, BOT_TOKEN="SECRET-TOKEN-without-its-number"))
    line = one_line_naming(result, "BOT_TOKEN")
    assert "SECRET-TOKEN" not in result.stderr + result.stdout
    assert "@BotFather" in line
    assert result.returncode == 2


def test_an_unreachable_bot_api_is_named_in_one_line(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    result = posbot("run", env=operator_env(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_BASE=base))
    line = one_line_naming(result, "TELEGRAM_API_BASE")
    assert base in line
    assert TOKEN.split(":")[1] not in result.stderr


async def test_a_token_the_bot_api_refuses_is_named_in_one_line(api: FakeBotAPI, tmp_path: Path) -> None:
    env = operator_env(tmp_path, BOT_TOKEN="999:REVOKED-token", TELEGRAM_API_BASE=api.base_url)
    line = one_line_naming(await posbot_beside("run", env=env), "BOT_TOKEN")
    assert "Unauthorized" in line
    assert "REVOKED" not in line


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


# ---- the Bot API at start-up: getMe and the webhook are essential, the rest may fail -----------------


def the_line(error: StartupError) -> str:
    return Translator("en")(error.key, **error.params)


@contextlib.asynccontextmanager
async def bot_running(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(run_telegram(settings))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def answers_help(api: FakeBotAPI, task: asyncio.Task[None]) -> bool:
    await api.wait_for(lambda: api.call_count("getUpdates") > 0 or task.done(), timeout=30)
    if task.done():
        task.result()  # the bot stopped: show why
    await Chat(api).type("/help")
    return "/repair" in Chat(api).last_text


@pytest.fixture
def warnings_(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="posbot"):
        yield caplog


def posbot_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "posbot" and r.levelno == logging.WARNING]


async def test_a_refused_command_menu_costs_one_warning_and_the_bot_carries_on(
    api: FakeBotAPI, sqlite_url: str, warnings_: pytest.LogCaptureFixture
) -> None:
    api.fail_next("setMyCommands", status=500, count=3)
    async with bot_running(telegram_settings(sqlite_url, api)) as task:
        assert await answers_help(api, task)
    assert [w for w in posbot_warnings(warnings_) if "command menu" in w] == [
        "could not set the command menu (Internal Server Error); typed commands still work"
    ]


async def test_a_command_menu_answered_with_an_html_error_page_costs_one_warning(
    warnings_: pytest.LogCaptureFixture,
) -> None:
    async def error_page(_: web.Request) -> web.Response:
        return web.Response(status=500, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", error_page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = closed_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}")))
    try:
        await set_commands(bot)
    finally:
        await bot.session.close()
        await runner.cleanup()
    assert posbot_warnings(warnings_) == [
        "could not set the command menu (Failed to decode object: JSONDecodeError); typed commands still work"
    ]


async def test_a_failed_delete_webhook_with_no_webhook_set_costs_one_warning(
    api: FakeBotAPI, sqlite_url: str, warnings_: pytest.LogCaptureFixture
) -> None:
    api.fail_next("deleteWebhook", status=502)
    async with bot_running(telegram_settings(sqlite_url, api)) as task:
        assert await answers_help(api, task)
    assert any("deleteWebhook failed (Bad Gateway)" in w for w in posbot_warnings(warnings_))


async def test_a_webhook_that_cannot_be_removed_stops_polling_before_it_starts(
    api: FakeBotAPI, sqlite_url: str
) -> None:
    settings = telegram_settings(sqlite_url, api)
    earlier = make_bot(settings)
    await earlier.set_webhook(f"http://127.0.0.1:{closed_port()}/telegram")
    await earlier.session.close()
    api.fail_next("deleteWebhook", status=500)
    with pytest.raises(StartupError) as stopped:
        await asyncio.wait_for(run_telegram(settings), timeout=60)
    assert stopped.value.key == "startup.webhook_stuck"
    assert "WEBHOOK_URL" in the_line(stopped.value)
    assert api.call_count("getUpdates") == 0


async def test_a_bot_api_failing_get_me_stops_start_up_naming_the_address(api: FakeBotAPI, sqlite_url: str) -> None:
    api.fail_next("getMe", status=500)
    with pytest.raises(StartupError) as stopped:
        await asyncio.wait_for(run_telegram(telegram_settings(sqlite_url, api)), timeout=60)
    assert the_line(stopped.value) == (
        f"The Bot API at {api.base_url} did not confirm the bot (Internal Server Error). "
        "Try again later, or check TELEGRAM_API_BASE."
    )


async def test_a_refused_webhook_stops_start_up_naming_webhook_url(api: FakeBotAPI, sqlite_url: str) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/telegram"
    settings = telegram_settings(sqlite_url, api, webhook_url=url, webhook_listen=f"127.0.0.1:{port}")
    api.fail_next("setWebhook", status=400, description="Bad Request: bad webhook: Failed to resolve host")
    with pytest.raises(StartupError) as stopped:
        await asyncio.wait_for(run_telegram(settings), timeout=60)
    assert the_line(stopped.value).startswith(
        f"WEBHOOK_URL: the Bot API refused the webhook {url} (Bad Request: bad webhook: Failed to resolve host)."
    )


async def test_a_webhook_port_already_taken_stops_start_up_naming_webhook_listen(
    api: FakeBotAPI, sqlite_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = telegram_settings(
            sqlite_url, api, webhook_url=f"http://127.0.0.1:{port}/telegram", webhook_listen=f"127.0.0.1:{port}"
        )
        with pytest.raises(StartupError) as stopped:
            await asyncio.wait_for(run_telegram(settings), timeout=60)
    assert stopped.value.key == "startup.webhook_listen"
    assert f"WEBHOOK_LISTEN: cannot listen on 127.0.0.1:{port}" in the_line(stopped.value)
    assert api.webhook is None  # Telegram was never told to post where nothing listens


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
