"""The database out of reach: which errors mean it, and one outage as the process lives it.

An update that meets such an error has changed nothing (its transaction rolled
back, or never began), so it can be tried again; `bot/handlers/intake.py` does.
The log gets one line when an outage starts and one when it ends, however many
updates and jobs run into it in between.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import exc as sa

log = logging.getLogger("posbot.database")

# SQLite's own words for a database that is there but cannot be used right now.
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")
# SQLSTATE classes: connection exceptions, operator intervention (shutdown, restart), too many connections.
_PG_UNREACHABLE = ("08", "57P", "53300")


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached, rather than that the work itself was wrong."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 8:
            continue
        seen.add(id(current))
        if _says_unreachable(current):
            return True
        pending.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
    return False


def _says_unreachable(error: BaseException) -> bool:
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OSError | sa.TimeoutError):  # refused, reset, no route, time-out; the pool exhausted
        return True
    if isinstance(error, sa.OperationalError | sa.InterfaceError):
        original = error.orig
        if type(original).__module__.startswith("sqlite3"):
            return any(word in str(original).lower() for word in _SQLITE_TRANSIENT)
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_PG_UNREACHABLE):
        return True
    # asyncpg's own client-side word for a connection that went away under it.
    return type(error).__module__.startswith("asyncpg") and "connection is closed" in str(error)


def describe(error: BaseException) -> str:
    """One short line for the log: the error's kind and first line (statements hide their values)."""
    said = (str(getattr(error, "orig", None) or error).strip().splitlines() or [""])[0][:160]
    return f"{type(error).__name__}: {said}" if said else type(error).__name__


class Outage:
    """This process's view of the database: up, or out of reach since a moment, and who was told."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.since: float | None = None
        self._waiting: set[int] = set()  # ids of the updates that met this outage
        self.recoveries = 0  # outages that ended: an update still failing across several is no outage's victim
        self._told: set[int] = set()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException, update_id: int | None = None) -> None:
        """Something met the outage; the first to do so says it in the log."""
        if self.since is None:
            self.since = self._clock()
            log.warning("database unreachable (%s); updates are kept and handled once it is back", describe(error))
        if update_id is not None:
            self._waiting.add(update_id)

    def recovered(self) -> None:
        """Something reached the database again: the outage is over."""
        if self.since is None:
            return
        took = self._clock() - self.since
        log.info("database reachable again after %.1f s; %d update(s) had to wait for it", took, len(self._waiting))
        self.since = None
        self.recoveries += 1
        self._waiting.clear()
        self._told.clear()

    def first_for(self, chat_id: int) -> bool:
        """True once per chat per outage: whether this chat is still to be told of the delay."""
        if chat_id in self._told:
            return False
        self._told.add(chat_id)
        return True
