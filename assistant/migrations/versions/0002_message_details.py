"""Per-message details: answer mode, also-retrieved sources, grounding, stopped.

Revision ID: a0002_message_details
Revises: a0001_conversations
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a0002_message_details"
down_revision: str | None = "a0001_conversations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assistant_messages") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assistant_messages") as batch:
        batch.drop_column("details")
