"""The tables: SQL is the one source of truth for everything that matters.

Conversation state, answers, tickets, follow-ups, the outbox and processed update
ids all live here and change together in one transaction per incoming update.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.storage.types import UTCDateTime

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = UTCDateTime()
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    invite_code: Mapped[str] = mapped_column(String(32), unique=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    key_account: Mapped[bool] = mapped_column(Boolean, default=False)
    routine_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    terminals: Mapped[list[Terminal]] = relationship(back_populates="merchant", order_by="Terminal.serial")


class Terminal(Base):
    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    model: Mapped[str | None] = mapped_column(String(60))
    installed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    warranty_until: Mapped[datetime | None] = mapped_column(Timestamp)

    merchant: Mapped[Merchant] = relationship(back_populates="terminals")


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # service (customer service) | aftersales | sales | supervisor: routes work and limits it.
    role: Mapped[str] = mapped_column(String(20), default="service")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_by: Mapped[int | None] = mapped_column(BigInteger)  # the admin's Telegram id
    added_at: Mapped[datetime | None] = mapped_column(Timestamp)


_TICKET_REPORTED = (
    "kind",
    "status",
    "role",
    "assignee_id",
    "category",
    "terminal_id",
    "resolution_method",
    "first_response_at",
    "respond_due_at",
    "sla_due_at",
    "resolved_at",
    "reopen_count",
    "serious",
    "agreed_outcome",
)


class Ticket(Base):
    __tablename__ = "tickets"
    # The reports count cases reported, and cases due, in a period; the cases reported are read from
    # the index alone (covering, migration 0008).
    __table_args__ = (
        Index("ix_tickets_created_in", "created_at", *_TICKET_REPORTED),
        Index("ix_tickets_sla_due_at", "sla_due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # repair | complaint | finding | enquiry
    # The lifecycle of bot/domain/cases.py: new | taken | visit_scheduled | in_progress |
    # waiting_parts | resolved | closed | reopened.
    status: Mapped[str] = mapped_column(String(16), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    serial: Mapped[str | None] = mapped_column(String(32))
    unverified: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str | None] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(10), default="normal")  # urgent | partial | normal
    role: Mapped[str | None] = mapped_column(String(20))  # the role the case is routed to
    description: Mapped[str | None] = mapped_column(Text)
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    preferred_visit_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Deadlines from the policy's SLA, on the working-day calendar; each warning and breach is
    # stamped once, so a restarted watcher never repeats them.
    respond_due_at: Mapped[datetime | None] = mapped_column(Timestamp)
    sla_due_at: Mapped[datetime | None] = mapped_column(Timestamp)  # resolve by
    respond_warned_at: Mapped[datetime | None] = mapped_column(Timestamp)
    respond_breached_at: Mapped[datetime | None] = mapped_column(Timestamp)
    resolve_warned_at: Mapped[datetime | None] = mapped_column(Timestamp)
    resolve_breached_at: Mapped[datetime | None] = mapped_column(Timestamp)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    first_response_at: Mapped[datetime | None] = mapped_column(Timestamp)
    resolution_method: Mapped[str | None] = mapped_column(String(16))  # remote | onsite
    visit_at: Mapped[datetime | None] = mapped_column(Timestamp)  # the appointment offered or agreed
    visit_state: Mapped[str | None] = mapped_column(String(12))  # proposed | confirmed | declined
    work_done: Mapped[str | None] = mapped_column(Text)
    parts_replaced: Mapped[str | None] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # The case message in the staff group, edited in place: the outbox row that says it.
    case_outbox_id: Mapped[int | None] = mapped_column(Id)
    # Complaints (issue 9): what the merchant wants, whether staff marked it serious, the date staff
    # promised for a complex case, the solution on the table and the outcome agreed.
    outcome_wanted: Mapped[str | None] = mapped_column(String(20))
    serious: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_at: Mapped[datetime | None] = mapped_column(Timestamp)
    proposal: Mapped[str | None] = mapped_column(Text)
    proposed_outcome: Mapped[str | None] = mapped_column(String(20))
    agreed_outcome: Mapped[str | None] = mapped_column(String(20))
    # A question staff relayed to the merchant, waiting for the merchant's answer.
    question: Mapped[str | None] = mapped_column(Text)
    question_asked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # A survey finding's origin and the answer it quotes.
    followup_id: Mapped[int | None] = mapped_column(Id, index=True)
    quote: Mapped[str | None] = mapped_column(Text)
    # No foreign key: submissions -> followups -> tickets already point the other way round.
    submission_id: Mapped[int | None] = mapped_column(Id, index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    resolved_at: Mapped[datetime | None] = mapped_column(Timestamp)
    closed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class TicketEvent(Base):
    """The audit trail: who did what to a ticket, and when."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(Timestamp)
    actor: Mapped[str] = mapped_column(String(40))  # merchant:<tg id> | staff:<tg id> | system
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Submission(Base):
    """One filling-in of one form version; answers hang off it."""

    __tablename__ = "submissions"
    # The reports (covering, migration 0008): the surveys of a period with what they are grouped by,
    # and whether a follow-up's survey was submitted.
    __table_args__ = (
        Index(
            "ix_submissions_finished_in", "status", "finished_at", "form_key", "method", "operator_id", "followup_id"
        ),
        Index("ix_submissions_of_followup", "followup_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_key: Mapped[str] = mapped_column(String(32))
    form_version: Mapped[int] = mapped_column(Integer)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    followup_id: Mapped[int | None] = mapped_column(ForeignKey("followups.id"))
    status: Mapped[str] = mapped_column(String(12))  # in_progress | submitted | cancelled | abandoned
    locale: Mapped[str] = mapped_column(String(8))
    # How the answers came: "chat" (the merchant in Telegram) or "phone" (staff recording a call).
    method: Mapped[str] = mapped_column(String(10), default="chat")
    operator_id: Mapped[int | None] = mapped_column(BigInteger)  # the staff member who recorded it
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("submission_id", "question_key"),
        # The reports' scores of each survey, read from the index alone (json has no b-tree order on
        # PostgreSQL, so there the value is an INCLUDE column).
        Index("ix_answers_scores", "submission_id", "kind", "value").ddl_if(dialect="sqlite"),
        Index("ix_answers_scores", "submission_id", "kind", postgresql_include=["value"]).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    question_key: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    # The typed value as JSON (bool, int, str, list); null means the merchant skipped it.
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    answered_at: Mapped[datetime] = mapped_column(Timestamp)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    question_key: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(10))  # photo | document
    file_id: Mapped[str] = mapped_column(String(255))
    file_name: Mapped[str | None] = mapped_column(String(255))


_FOLLOWUP_REPORTED = ("status", "kind", "method", "handled_by", "terminal_id", "ticket_id")


class FollowUp(Base):
    __tablename__ = "followups"
    __table_args__ = (
        Index("ix_followups_due", "status", "send_at"),
        # The reports (covering, migration 0008): follow-ups due, and follow-ups completed, in a period,
        # with every column their rates and the unreachable count read.
        Index(
            "ix_followups_due_in",
            "window_end",
            "completed_at",
            *_FOLLOWUP_REPORTED,
            "escalation_reason",
            "outcome",
            "merchant_id",
        ),
        Index("ix_followups_done_in", "completed_at", "window_end", *_FOLLOWUP_REPORTED),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    form_key: Mapped[str] = mapped_column(String(32))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # What caused it, so re-importing or re-resolving never schedules the same follow-up twice.
    source_key: Mapped[str] = mapped_column(String(80), unique=True)
    # scheduled | sent | reminded | completed | escalated | cancelled
    status: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(24))  # installation | repair-resolved | ...
    event_at: Mapped[datetime | None] = mapped_column(Timestamp)
    send_at: Mapped[datetime] = mapped_column(Timestamp)
    window_end: Mapped[datetime] = mapped_column(Timestamp)
    # Computed on the Monday-Friday fallback: recomputed once the holiday data for the year exists.
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    remind_at: Mapped[datetime | None] = mapped_column(Timestamp)
    escalation_reason: Mapped[str | None] = mapped_column(String(20))  # no_answer | unreachable | not_linked | rejected
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    reminded_at: Mapped[datetime | None] = mapped_column(Timestamp)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    escalated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    outcome: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[int | None] = mapped_column(BigInteger)  # the staff member's Telegram id
    method: Mapped[str | None] = mapped_column(String(10))  # chat | phone, once completed
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class StaffAudit(Base):
    """Who did something sensitive, or tried to: refused staff actions, phone numbers revealed."""

    __tablename__ = "staff_audit"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(32))  # refused | phone_revealed | staff_added | ...
    subject: Mapped[str | None] = mapped_column(String(40))  # ticket:12 | followup:5 | command:/open
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxMessage(Base):
    """Everything the bot says goes here first, in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    # {"text": ..., "reply_markup": {...} | None, "edit_message_id": int | None}
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(24), default="reply")
    followup_id: Mapped[int | None] = mapped_column(ForeignKey("followups.id"))
    ticket_id: Mapped[int | None] = mapped_column(Id)  # the case a case message or a staff prompt is about
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Sends whose outcome was unknown (no readable answer after the request went out): each may
    # have reached the chat, so the send that followed may have repeated the message.
    ambiguous: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(Timestamp)
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)
    lease_owner: Mapped[str | None] = mapped_column(String(40))  # the claim that holds the lease
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Conversation(Base):
    """One row per Telegram user: language, who they are, and the open dialogue's state."""

    __tablename__ = "conversations"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    locale: Mapped[str] = mapped_column(String(8))
    locale_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    # Bumped on every change; a writer that read an older revision loses and retries.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)

    __mapper_args__ = {"version_id_col": revision}


class ProcessedUpdate(Base):
    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(Timestamp)


class ReportPost(Base):
    """A report posted to the staff group by itself: one row per period, written in the transaction that
    queues the post, so of two instances running the weekly job only one says it."""

    __tablename__ = "report_posts"
    __table_args__ = (UniqueConstraint("kind", "period_start"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # weekly
    period_start: Mapped[str] = mapped_column(String(10))  # the first local day, 2026-11-16
    posted_at: Mapped[datetime] = mapped_column(Timestamp)
