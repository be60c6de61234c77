"""Group commit: small writes from many concurrent tasks share one transaction.

The dispatcher records each send as soon as it is made; one transaction per record
cost more CPU than the send itself. Here a write waits while the transaction before
it commits, then goes in with every other write that arrived meanwhile: one
commit for the lot, and each caller still learns its own statement's row count.
A write that comes when nothing has been committed for `spacing` seconds goes in at
once. Under a steady stream (sends leave one by one at the rate limit) commits are
spaced `spacing` seconds apart, so that each gathers the writes of that stretch
instead of one or two. The statements run on a plain connection: an UPDATE needs
no ORM session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import UpdateBase

from bot.storage.db import writer_turn


@dataclass
class _Write:
    statement: UpdateBase
    params: dict[str, Any] | None
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], spacing: float = 0.0) -> None:
        engine = sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("group commit needs sessions bound to one engine")
        self.engine = engine
        self.spacing = spacing
        self._waiting: list[_Write] = []
        self._committer: asyncio.Task[None] | None = None
        self._last_start = float("-inf")
        self.transactions = 0  # how many commits the writes took, for benchmarks

    async def execute(self, statement: UpdateBase, params: dict[str, Any] | None = None) -> int:
        """Run `statement` (with `params` for its bind parameters) in the next shared transaction.

        Returns its row count once that transaction has committed.
        """
        write = _Write(statement, params)
        self._waiting.append(write)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_all())
        return await asyncio.shield(write.done)

    async def _commit_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            pause = self._last_start + self.spacing - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            self._last_start = loop.time()
            batch, self._waiting = self._waiting, []
            try:
                counts = await self._commit(batch)
            except Exception as exc:  # the whole transaction rolled back: every write in it failed
                for write in batch:
                    if not write.done.done():
                        write.done.set_exception(exc)
                continue
            for write, count in zip(batch, counts, strict=True):
                if not write.done.done():
                    write.done.set_result(count)

    async def _commit(self, batch: list[_Write]) -> list[int]:
        counts = []
        async with writer_turn(self.engine), self.engine.begin() as connection:
            for write in batch:
                result = await connection.execute(write.statement, write.params)
                counts.append(int(result.rowcount))
        self.transactions += 1
        return counts
