"""reports: covering indexes, so a year's indicators read index entries in order, not a row per entry

Counting a whole year by the period indexes of 0006 looked up every row the index found, one random
read each (a million answers, their surveys, every follow-up and case). These indexes carry the
columns the indicators read, so SQLite answers from the index alone: the surveys of a period with
what they are grouped by, each survey's scores (on PostgreSQL the JSON value rides along as an
INCLUDE column, json having no b-tree order), the follow-ups due or completed in a period with
everything their rates and the unreachable count look at, and the cases reported in a period with
every case indicator's column. Each replaces an index it begins with.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FOLLOWUP_COLUMNS = ["status", "kind", "method", "handled_by", "terminal_id", "ticket_id"]
DUE = ["window_end", "completed_at", *FOLLOWUP_COLUMNS, "escalation_reason", "outcome", "merchant_id"]
DONE = ["completed_at", "window_end", *FOLLOWUP_COLUMNS]
CASES = [
    "created_at",
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
]
SURVEYS = ["status", "finished_at", "form_key", "method", "operator_id", "followup_id"]


def upgrade() -> None:
    op.drop_index("ix_followups_window_end", table_name="followups")
    op.drop_index("ix_followups_completed_at", table_name="followups")
    op.drop_index("ix_submissions_finished_at", table_name="submissions")
    op.drop_index("ix_submissions_followup_id", table_name="submissions")
    op.drop_index("ix_tickets_created_at", table_name="tickets")
    op.create_index("ix_tickets_created_in", "tickets", CASES)
    op.create_index("ix_followups_due_in", "followups", DUE)
    op.create_index("ix_followups_done_in", "followups", DONE)
    op.create_index("ix_submissions_finished_in", "submissions", SURVEYS)
    op.create_index("ix_submissions_of_followup", "submissions", ["followup_id", "status"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_answers_scores", "answers", ["submission_id", "kind"], postgresql_include=["value"])
    else:
        op.create_index("ix_answers_scores", "answers", ["submission_id", "kind", "value"])


def downgrade() -> None:
    op.drop_index("ix_answers_scores", table_name="answers")
    op.drop_index("ix_submissions_of_followup", table_name="submissions")
    op.drop_index("ix_submissions_finished_in", table_name="submissions")
    op.drop_index("ix_followups_done_in", table_name="followups")
    op.drop_index("ix_followups_due_in", table_name="followups")
    op.create_index("ix_submissions_followup_id", "submissions", ["followup_id"])
    op.drop_index("ix_tickets_created_in", table_name="tickets")
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_index("ix_submissions_finished_at", "submissions", ["finished_at"])
    op.create_index("ix_followups_completed_at", "followups", ["completed_at"])
    op.create_index("ix_followups_window_end", "followups", ["window_end"])
