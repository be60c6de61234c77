"""reports: indexes for counting by period, and the weekly report's once-only stamp

The quality indicators count follow-ups due and completed in a period, surveys finished in it,
the survey that completed each follow-up, and cases reported and due in it: each of those
columns gets an index. `report_posts` records each report the bot posted by itself, so two
instances running the weekly job post it once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_followups_window_end", "followups", "window_end"),
    ("ix_followups_completed_at", "followups", "completed_at"),
    ("ix_submissions_finished_at", "submissions", "finished_at"),
    ("ix_submissions_followup_id", "submissions", "followup_id"),
    ("ix_tickets_created_at", "tickets", "created_at"),
    ("ix_tickets_sla_due_at", "tickets", "sla_due_at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)
    op.create_table(
        "report_posts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("period_start", sa.String(length=10), nullable=False),
        sa.Column("posted_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_posts")),
        sa.UniqueConstraint("kind", "period_start", name=op.f("uq_report_posts_kind")),
    )


def downgrade() -> None:
    op.drop_table("report_posts")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
