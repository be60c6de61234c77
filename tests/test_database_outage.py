"""Which errors mean "the database is out of reach" (the update is kept and tried again) and which mean the
work itself was wrong; and the intake keeping, refusing or giving up on an update accordingly."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import pytest
from sqlalchemy import exc

from bot.handlers.intake import DEFERRED, GIVE_UP_AFTER, Intake
from bot.storage.outage import Outage, unreachable


class PgError(Exception):
    """What asyncpg raises: the server's SQLSTATE on the exception."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(kind: type[exc.DBAPIError], original: Exception, invalidated: bool = False) -> exc.DBAPIError:
    return kind("SELECT 1", None, original, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        wrapped(exc.DBAPIError, Exception("connection was closed in the middle of operation"), invalidated=True),
        wrapped(exc.OperationalError, sqlite3.OperationalError("database is locked")),
        wrapped(exc.InterfaceError, PgError("08003")),
        wrapped(exc.DBAPIError, PgError("57P01")),  # terminating connection due to administrator command
        PgError("57P03"),  # the database system is starting up
        PgError("53300"),  # too many connections
        exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
    ],
    ids=repr,
)
def test_errors_of_a_database_out_of_reach_are_recognised(error: Exception) -> None:
    assert unreachable(error)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(exc.IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed")),
        wrapped(exc.OperationalError, sqlite3.OperationalError("no such table: tickets")),
        wrapped(exc.DBAPIError, PgError("23505")),  # unique violation
        ValueError("a bug"),
        RuntimeError("the ticket printer caught fire"),
    ],
    ids=repr,
)
def test_errors_of_the_work_itself_are_not_mistaken_for_an_outage(error: Exception) -> None:
    assert not unreachable(error)


def test_an_outage_is_said_once_when_it_starts_and_once_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="posbot.database")
    now = [100.0]
    outage = Outage(clock=lambda: now[0])
    for update_id in (1, 2, 2, 3):
        outage.failed(ConnectionRefusedError(111, "Connect call failed"), update_id)
    assert outage.down and outage.first_for(5) and not outage.first_for(5)
    now[0] = 104.0
    outage.recovered()
    outage.recovered()
    assert not outage.down and outage.first_for(5)  # a new outage tells the chat again
    assert [r.getMessage() for r in caplog.records] == [
        "database unreachable (ConnectionRefusedError: [Errno 111] Connect call failed); "
        "updates are kept and handled once it is back",
        "database reachable again after 4.0 s; 3 update(s) had to wait for it",
    ]


# ---- the intake middleware on its own -------------------------------------------------------------------


def an_update(update_id: int) -> Any:
    from aiogram.types import Update

    return Update(update_id=update_id)


async def test_a_held_update_is_tried_again_until_the_database_answers() -> None:
    outage = Outage()
    intake = Intake(outage, hold=True)
    attempts: list[int] = []

    async def handler(_: Any, __: dict[str, Any]) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError(111, "Connect call failed")
        return "handled"

    assert await intake(handler, an_update(7), {}) == "handled"
    assert len(attempts) == 3 and not outage.down


async def test_the_webhook_refuses_an_update_during_an_outage_and_gives_up_on_one_that_fails_alone() -> None:
    outage = Outage()
    intake = Intake(outage, hold=False)

    async def poisoned(_: Any, __: dict[str, Any]) -> None:
        raise exc.OperationalError("SELECT 1", None, Exception("server closed the connection unexpectedly"))

    assert await intake(poisoned, an_update(9), {}) is DEFERRED
    # The database answers other updates in between; this one keeps failing as if it were out.
    for _ in range(GIVE_UP_AFTER - 1):
        outage.recovered()
        assert await intake(poisoned, an_update(9), {}) is DEFERRED
    outage.recovered()
    with pytest.raises(exc.OperationalError):
        await intake(poisoned, an_update(9), {})
