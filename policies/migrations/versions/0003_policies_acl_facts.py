"""policy_acl_facts: the permissions each synced file's readers were decided from

Revision ID: 0003_policies
Revises: 0002_signed_audit
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_policies"
down_revision = "0002_signed_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_acl_facts",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("rel_path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_policy_acl_facts_source", "policy_acl_facts", ["source"])


def downgrade() -> None:
    op.drop_index("ix_policy_acl_facts_source", table_name="policy_acl_facts")
    op.drop_table("policy_acl_facts")
