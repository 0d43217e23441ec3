"""sync requests handed to the process owning the embedded store; store owners

Revision ID: 0003_sync_requests
Revises: 0002_ingest
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_sync_requests"
down_revision = "0002_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_sync_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("store_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requester_pid", sa.Integer(), nullable=False),
        sa.Column("requester_host", sa.String(length=255), nullable=False),
        sa.Column("owner_pid", sa.Integer(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ingest_sync_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ingest_sync_requests_store_key"), ["store_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ingest_sync_requests_status"), ["status"], unique=False
        )
    op.create_table(
        "ingest_store_owners",
        sa.Column("store_key", sa.String(length=64), nullable=False),
        sa.Column("store", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("store_key"),
    )


def downgrade() -> None:
    op.drop_table("ingest_store_owners")
    with op.batch_alter_table("ingest_sync_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_sync_requests_status"))
        batch_op.drop_index(batch_op.f("ix_ingest_sync_requests_store_key"))
    op.drop_table("ingest_sync_requests")
