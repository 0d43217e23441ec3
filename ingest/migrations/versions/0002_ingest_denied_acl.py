"""ingest_files: denied_groups and the hash of the permissions the readers came from

Revision ID: 0002_ingest
Revises: 0001_ingest
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ingest"
down_revision = "0001_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_files") as batch:
        batch.add_column(sa.Column("denied_groups", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("acl_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_files") as batch:
        batch.drop_column("acl_sha256")
        batch.drop_column("denied_groups")
