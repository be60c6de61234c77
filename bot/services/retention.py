"""Personal data kept no longer than needed (002 §4.2): the daily purge and `posbot purge`.

Each category is one condition on one table and one bulk statement (blank the text, clear
the state, delete the row), run in batches of `batch_size` rows, each its own short
transaction, so PostgreSQL never holds many row locks for long and SQLite's writer is free
between batches. Every statement re-checks its condition on the rows it touches, so a row
that changed since it was chosen (a conversation the merchant just continued) is left alone.
Answers, submissions, tickets and their audit trail are the company's records: kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from bot.clock import Clock
from bot.domain.retention import CATEGORIES, RetentionPolicy
from bot.storage.models import Conversation, FollowUp, OutboxMessage, ProcessedUpdate, StaffAudit

log = logging.getLogger("posbot.retention")

# A blanked message: the row stays (replies to an old case message still find their case), the words go.
PURGED_PAYLOAD: dict[str, Any] = {"text": "", "purged": True}
# A call task staff may still work on: its text is edited again when they do (bot/services/calls.py).
OPEN_CALL_TASK = ("escalated", "called")


@dataclass(frozen=True)
class _Rule:
    key: InstrumentedAttribute[Any]  # the primary key, to choose a batch by
    condition: Callable[[datetime], ColumnElement[bool]]
    values: dict[str, Any] | None  # None: delete the rows


def _message_texts(cutoff: datetime) -> ColumnElement[bool]:
    open_task = exists().where(FollowUp.id == OutboxMessage.followup_id, FollowUp.status.in_(OPEN_CALL_TASK))
    return and_(
        OutboxMessage.status != "pending",  # delivered, or given up on
        OutboxMessage.created_at < cutoff,
        OutboxMessage.payload["purged"].as_boolean().is_(None),
        not_(and_(OutboxMessage.purpose == "escalation", open_task)),
    )


RULES: dict[str, _Rule] = {
    "message_texts": _Rule(OutboxMessage.id, _message_texts, {"payload": PURGED_PAYLOAD}),
    "processed_updates": _Rule(ProcessedUpdate.update_id, lambda cutoff: ProcessedUpdate.processed_at < cutoff, None),
    "dialogue_states": _Rule(
        Conversation.telegram_user_id,
        lambda cutoff: and_(
            or_(Conversation.state.is_not(None), Conversation.submission_id.is_not(None)),
            Conversation.updated_at < cutoff,
        ),
        # The revision moves too, so a handler that read the old state redoes its work on the new one.
        {"state": None, "submission_id": None, "revision": Conversation.revision + 1},
    ),
    "contact_reveals": _Rule(
        StaffAudit.id, lambda cutoff: and_(StaffAudit.action == "phone_revealed", StaffAudit.at < cutoff), None
    ),
}
assert tuple(RULES) == CATEGORIES


@dataclass(frozen=True)
class PurgeReport:
    counts: dict[str, int]  # category -> rows that went (or would go, in a dry run)
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Retention:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, policy: RetentionPolicy) -> None:
        self.sessions = sessions
        self.clock = clock
        self.policy = policy
        self.longest_batch = 0.0  # seconds: the longest any one purge transaction held its locks

    async def purge(self, dry_run: bool = False) -> PurgeReport:
        cutoffs = self.policy.cutoffs(self.clock.now())
        counts: dict[str, int] = {}
        for name, rule in RULES.items():
            condition = rule.condition(cutoffs[name])
            counts[name] = await (self._count(rule, condition) if dry_run else self._apply(rule, condition))
        report = PurgeReport(counts, dry_run)
        if not dry_run and report.total:
            log.info(
                "retention purge: %s (longest transaction %.0f ms)",
                ", ".join(f"{name} {count}" for name, count in counts.items()),
                1000 * self.longest_batch,
            )
        return report

    async def run_daily(self) -> None:
        """The scheduler's job: a failed run is logged and tried again the next day."""
        try:
            await self.purge()
        except Exception:
            log.exception("the retention purge failed; it runs again tomorrow")

    async def _count(self, rule: _Rule, condition: ColumnElement[bool]) -> int:
        async with self.sessions() as session:
            return int(
                (await session.execute(select(func.count()).select_from(rule.key.class_).where(condition))).scalar_one()
            )

    async def _apply(self, rule: _Rule, condition: ColumnElement[bool]) -> int:
        done = 0
        while True:
            started = time.perf_counter()
            async with self.sessions() as session, session.begin():
                batch = select(rule.key).where(condition).order_by(rule.key).limit(self.policy.batch_size)
                if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
                    batch = batch.with_for_update(skip_locked=True)  # rows a handler holds wait for tomorrow
                table = rule.key.class_
                statement = (delete(table) if rule.values is None else update(table).values(**rule.values)).where(
                    rule.key.in_(batch), condition
                )
                result = await session.execute(statement.execution_options(synchronize_session=False))
                changed = int(result.rowcount or 0)  # type: ignore[attr-defined]
            self.longest_batch = max(self.longest_batch, time.perf_counter() - started)
            done += changed
            if changed < self.policy.batch_size:
                return done
