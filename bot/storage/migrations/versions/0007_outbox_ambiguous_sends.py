"""outbox ambiguous sends

A send whose outcome the bot could not read (the answer timed out, or came back garbled, after the
request went out) may have reached the chat; sending it again may repeat it. Each such send is
counted on its row, so repeats are known and reported, not guessed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ambiguous", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("ambiguous")
