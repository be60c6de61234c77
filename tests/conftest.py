"""Shared fixtures: a real SQLite file, a real PostgreSQL database, and the bot's core on them.

Also the test tiers (markers in pyproject.toml): `make test` runs everything, `make test-fast` only the
unit tier, which leaves out `postgres`, `e2e` and `slow`. The first two are given here, from what a test
uses, so a new test lands in the right tier without anyone remembering a decorator; `slow` is by hand.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import types
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import make_url

from bot.app import Core, build_core
from bot.clock import FrozenClock
from bot.config import Settings
from bot.domain.calendar import HolidaySource, chinese_workday
from bot.storage.db import upgrade

PG_URL = os.environ.get("POSBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("POSBOT_REQUIRE_PG") == "1"
STAFF_CHAT = -100777
SHANGHAI = ZoneInfo("Asia/Shanghai")


# ---- tiers ---------------------------------------------------------------------------------------------

PG_FIXTURES = frozenset({"pg_url", "pg_template"})
# Slow tests in modules whose owners have not marked them yet (elsewhere: @pytest.mark.slow on the test).
SLOW_ELSEWHERE = frozenset(
    {
        # Seven forms times 60 random dialogues of up to 40 inputs: over a minute of CPU on its own.
        "tests/test_engine.py::test_random_inputs_never_raise_and_never_store_an_invalid_answer",
    }
)
# Names whose mention in a test, one of its fixtures or a helper of this package it calls, means the test
# starts the fake Bot API server or runs posbot as a child process.
E2E_NAMES = frozenset({"FakeBotAPI", "subprocess", "create_subprocess_exec", "create_subprocess_shell"})


def _mentions(function: Callable[..., Any], names: frozenset[str], seen: set[types.CodeType]) -> bool:
    """Whether the code of `function` (nested functions and lambdas included), or of a function of this
    test package it refers to, names any of `names`. Annotations do not count: they are strings here."""
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    referred: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        referred.update(current.co_names)
        pending.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    if referred & names:
        return True
    namespace = getattr(function, "__globals__", {})
    for name in referred:
        helper = namespace.get(name)
        if inspect.isfunction(helper) and helper.__module__.startswith("tests") and _mentions(helper, names, seen):
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if item.nodeid.partition("[")[0] in SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)
        if PG_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.postgres)
        fixtures = [definitions[-1].func for definitions in item._fixtureinfo.name2fixturedefs.values() if definitions]
        seen: set[types.CodeType] = set()
        if any(_mentions(function, E2E_NAMES, seen) for function in [item.obj, *fixtures]):
            item.add_marker(pytest.mark.e2e)


# ---- databases -------------------------------------------------------------------------------------------


async def _admin(sql: list[str]) -> None:
    import asyncpg

    url = make_url(PG_URL)
    connection = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database, timeout=5
    )
    try:
        for statement in sql:
            await connection.execute(statement)
    finally:
        await connection.close()


def _database_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """One migrated PostgreSQL database per test run; each test copies it."""
    name = f"posbot_tmpl_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin([f'CREATE DATABASE "{name}"']))
    except Exception as exc:
        where = make_url(PG_URL).render_as_string()
        reason = f"no PostgreSQL reachable at {where} ({type(exc).__name__}); set POSBOT_TEST_PG_URL"
        if REQUIRE_PG:
            pytest.fail(reason)
        pytest.skip(reason)
    upgrade(_database_url(name))
    yield name
    asyncio.run(_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name = f"posbot_t_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin([f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"']))
    yield _database_url(name)
    asyncio.run(_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'posbot.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every storage test runs on a real SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


def holidays_known_until(last_year: int) -> HolidaySource:
    """The installed chinesecalendar's answers up to `last_year` and no data after it, as for a year whose
    holidays the State Council has not announced yet: tests of that case must not depend on which
    chinesecalendar release happens to be installed."""

    def source(day: date) -> bool:
        if day.year > last_year:
            raise NotImplementedError(f"no holiday data for {day.year}")
        return chinese_workday(day)

    return source


@dataclass
class RecordingMessenger:
    """Keeps what would have been sent, in order, for assertions on what people see."""

    sent: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    async def send(self, chat_id: int, payload: dict[str, Any]) -> int | None:
        self.sent.append((chat_id, payload))
        return len(self.sent)

    def texts(self, chat_id: int) -> list[str]:
        return [p["text"] for c, p in self.sent if c == chat_id]


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "staff_chat_id": STAFF_CHAT,
        "bot_token": None,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> FrozenClock:
    # A Tuesday morning in Shanghai.
    return FrozenClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
async def core(database_url: str, clock: FrozenClock) -> AsyncIterator[Core]:
    built = await build_core(make_settings(database_url), RecordingMessenger(), clock)
    yield built
    await built.close()


async def linked_merchant(
    core: Core, user_id: int, *, name: str, phone: str | None, terminals: list[tuple[str, str | None]] | None = None
) -> int:
    """A merchant already connected to Telegram user `user_id`, talking English."""
    from bot.services.merchants import add_merchant
    from bot.storage.models import Conversation

    async with core.sessions() as session, session.begin():
        merchant = await add_merchant(
            session,
            name=name,
            phone=phone,
            now=core.clock.now(),
            terminals=terminals or [],
            invite_code=f"code{user_id}",
        )
        merchant.telegram_user_id = user_id
        session.add(
            Conversation(
                telegram_user_id=user_id,
                chat_id=user_id,
                locale="en",
                locale_chosen=False,
                merchant_id=merchant.id,
                updated_at=core.clock.now(),
            )
        )
        return merchant.id


async def add_staff(core: Core, user_id: int, role: str = "service", name: str | None = None) -> None:
    """A staff member, as an admin's `/staff add` would have made them."""
    from bot.storage.models import Staff

    async with core.sessions() as session, session.begin():
        session.add(Staff(telegram_user_id=user_id, name=name or f"staff {user_id}", role=role, active=True))


# A mainland mobile number written out in full (single spaces or dashes allowed between digits).
FULL_MOBILE = re.compile(r"(?<![\d*])(?:\+?86[ \-]?)?1[3-9]\d(?:[ \-]?\d){8}(?!\d)")


@pytest.fixture(autouse=True)
def no_full_phone_number_reaches_a_group(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Over every message any test sends to a group chat (negative id), through the fake Bot API server or
    the recording messenger, edits included: phone numbers are masked there (DOMAIN: data protection)."""
    from tests.fakes import FakeBotAPI

    servers: list[Any] = []
    said: list[tuple[int, str]] = []
    create, record = FakeBotAPI.__init__, RecordingMessenger.send

    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        create(self, *args, **kwargs)
        servers.append(self)

    async def tracked_send(self: RecordingMessenger, chat_id: int, payload: dict[str, Any]) -> int | None:
        said.append((chat_id, str(payload.get("text") or "")))
        return await record(self, chat_id, payload)

    monkeypatch.setattr(FakeBotAPI, "__init__", tracked_init)
    monkeypatch.setattr(RecordingMessenger, "send", tracked_send)
    yield
    for server in servers:
        for message in server.sent():
            said.append((message.chat_id, message.text or ""))
            said.extend((message.chat_id, old or "") for old, _ in message.history)
    leaks = [text for chat_id, text in said if chat_id < 0 and FULL_MOBILE.search(text)]
    assert not leaks, f"a full phone number reached a group chat: {leaks[0]!r}"
