"""Group commit: concurrent writes share transactions, and each learns its own row count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from bot.storage.db import create_engine, session_factory, upgrade_async
from bot.storage.group_commit import GroupCommit
from bot.storage.models import OutboxMessage

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("spacing", [0.0, 0.05], ids=["back-to-back", "spaced"])
async def test_concurrent_writes_share_transactions_and_each_gets_its_row_count(
    database_url: str, spacing: float
) -> None:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            session.add_all(
                OutboxMessage(chat_id=i, payload={"text": "hi"}, purpose="reply", status="pending", created_at=NOW)
                for i in range(1, 201)
            )
        writes = GroupCommit(sessions, spacing=spacing)

        async def mark(chat_id: int) -> int:
            await asyncio.sleep(0)
            # Chat 0 has no row: its count is 0, and it does not spoil the others'.
            return await writes.execute(
                update(OutboxMessage).where(OutboxMessage.chat_id == chat_id).values(status="sent")
            )

        counts = await asyncio.gather(*(mark(i) for i in range(0, 201)))
        assert counts == [0] + [1] * 200
        assert 1 <= writes.transactions < 50
        async with sessions() as session:
            statuses = set((await session.execute(select(OutboxMessage.status))).scalars())
        assert statuses == {"sent"}

        # A statement the database refuses fails the writes of its transaction, and the next ones go on.
        bad = writes.execute(update(OutboxMessage).values(chat_id=None))
        with pytest.raises(DBAPIError):
            await bad
        assert await writes.execute(update(OutboxMessage).where(OutboxMessage.chat_id == 7).values(attempts=3)) == 1
    finally:
        await engine.dispose()
