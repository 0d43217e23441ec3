"""audit records carry the ed25519 signature of their position and hash

Revision ID: 0002_signed_audit
Revises: 0001_policies
Create Date: 2026-11-29 23:10:00

Existing records keep their sha256 chain and get no signature (nothing is rewritten); the
service re-anchors such a chain on its next start with one signed, audited record
(``audit.chain_upgrade``, see docs/policies.md "Upgrading a log written before signatures").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_signed_audit"
down_revision = "0001_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("key_id")
