"""The database: engine, sessions, and migrations to the latest schema."""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.config import StartupError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseUnavailable(StartupError):
    """DATABASE_URL points at a database that cannot be opened: absent, refusing, unreachable."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("startup.database", url=shown_url(url), reason=reason)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # Statements carry phone numbers and merchants' own words: an error message (and so an error
    # log) names the statement but never its values.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # Several connections (the bot, the scheduler) write; wait for the lock instead of failing.
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


_WRITERS: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()


def writer_turn(bind: object) -> asyncio.Lock | contextlib.nullcontext[None]:
    """On SQLite, this process's writing transactions take turns here: two connections writing at once
    make one of them sleep in SQLite's busy handler (up to 100 ms a time). PostgreSQL needs no turns."""
    engine = getattr(bind, "sync_engine", bind)
    if getattr(getattr(engine, "dialect", None), "name", None) != "sqlite":
        return contextlib.nullcontext()
    lock = _WRITERS.get(engine)
    if lock is None:
        lock = _WRITERS[engine] = asyncio.Lock()
    return lock


def shown_url(url: str) -> str:
    """The URL as an operator may see it: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could find either
        return url.split("@", 1)[-1]


def _reason(exc: BaseException) -> str:
    """The driver's own first line (`database "x" does not exist`, `Connect call failed`...)."""
    original = getattr(exc, "orig", None) or exc
    if isinstance(original, OSError) and original.strerror:
        said = original.strerror
    else:
        said = str(original) or type(original).__name__
    return said.strip().splitlines()[0][:200] if said.strip() else type(original).__name__


async def check_connection(url: str) -> None:
    """Open one connection and run `SELECT 1`, so that start-up names the database when it cannot."""
    try:
        if url.startswith("sqlite"):
            # The stdlib driver, synchronously: a failed aiosqlite connect leaves its worker thread to
            # report into a closed event loop, a traceback on stderr after the one line we print.
            engine = sqlalchemy.create_engine(make_url(url).set(drivername="sqlite"), hide_parameters=True)
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
            finally:
                engine.dispose()
            return
        async_engine = create_engine(url)
        try:
            async with async_engine.connect() as async_connection:
                await async_connection.execute(text("SELECT 1"))
        finally:
            await async_engine.dispose()
    except Exception as exc:  # whatever the driver raises, connecting is all this tried
        raise DatabaseUnavailable(url, _reason(exc)) from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`. Blocking: call it before the event loop or in a thread."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    """Bring the schema to the latest migration. A database already there (every start but the first after
    an upgrade) is recognised with one query, without loading Alembic (a third of a second of imports)."""
    if await at_head(url):
        return
    await asyncio.to_thread(upgrade, url)


_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(.+?)\s*$", re.MULTILINE)


@cache
def head_revision() -> str | None:
    """The one migration no other migration follows, read from the files' `revision` and `down_revision`
    lines; None when that is not plain (a merge, a branch): then Alembic decides."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = {m[1]: m[2] for m in _REVISION.finditer(path.read_text(encoding="utf-8"))}
        revision, down = found.get("revision", ""), found.get("down_revision", "")
        if not re.fullmatch(r"['\"][\w-]+['\"]", revision) or not re.fullmatch(r"None|['\"][\w-]+['\"]", down):
            return None
        revisions.add(revision.strip("'\""))
        if down != "None":
            followed.add(down.strip("'\""))
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else None


async def at_head(url: str) -> bool:
    """The database's recorded version is the latest migration (False when unsure: no table yet, several rows)."""
    head = head_revision()
    if head is None:
        return False
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except DBAPIError:  # no version table: a new database
        return False
    finally:
        await engine.dispose()
    return list(rows) == [head]
