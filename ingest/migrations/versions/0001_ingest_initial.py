"""ingest initial tables

Revision ID: 0001_ingest
Revises:
Create Date: 2026-11-26 18:37:31.079695
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ingest"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_index_meta",
        sa.Column("store_key", sa.String(length=64), nullable=False),
        sa.Column("embedding_model", sa.Text(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("store_key"),
    )
    op.create_table(
        "ingest_sources",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "ingest_sync_lock",
        sa.Column("store_key", sa.String(length=64), nullable=False),
        sa.Column("store", sa.Text(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("store_key"),
    )
    op.create_table(
        "ingest_files",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("doc_id", sa.String(length=32), nullable=False),
        sa.Column("rel_path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("allowed_groups", sa.Text(), nullable=False),
        sa.Column("classification", sa.String(length=64), nullable=True),
        sa.Column("seen_run", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["ingest_sources.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("doc_id"),
    )
    with op.batch_alter_table("ingest_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingest_files_seen_run"), ["seen_run"], unique=False)
        batch_op.create_index(batch_op.f("ix_ingest_files_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_ingest_files_source_id"), ["source_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ingest_files_status"), ["status"], unique=False)

    op.create_table(
        "ingest_sync_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("store_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("counters", sa.Text(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["ingest_sources.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ingest_sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ingest_sync_runs_source_id"), ["source_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ingest_sync_runs_store_key"), ["store_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_sync_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_sync_runs_store_key"))
        batch_op.drop_index(batch_op.f("ix_ingest_sync_runs_source_id"))

    op.drop_table("ingest_sync_runs")
    with op.batch_alter_table("ingest_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_files_status"))
        batch_op.drop_index(batch_op.f("ix_ingest_files_source_id"))
        batch_op.drop_index(batch_op.f("ix_ingest_files_sha256"))
        batch_op.drop_index(batch_op.f("ix_ingest_files_seen_run"))

    op.drop_table("ingest_files")
    op.drop_table("ingest_sync_lock")
    op.drop_table("ingest_sources")
    op.drop_table("ingest_index_meta")
