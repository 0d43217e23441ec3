"""SQLAlchemy models of the policies package (its own metadata and Alembic history).

``audit_records`` is append-only: the repository in :mod:`policies.audit` has no update or
delete path except the retention purge. Each record carries the ed25519 signature of its
position and hash (``key_id``, ``signature``; empty for records written before revision
0002_signed_audit). ``audit_head`` is a single row holding the chain head; appenders lock it so
concurrent writers form one linear chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

GENESIS_HASH = "0" * 64


class PoliciesBase(DeclarativeBase):
    pass


class Account(PoliciesBase):
    __tablename__ = "policy_accounts"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(400))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRecordRow(PoliciesBase):
    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    event_type: Mapped[str] = mapped_column(String(40), index=True)
    user_pseudonym: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    groups: Mapped[str] = mapped_column(Text)  # canonical JSON list
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    question_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    retrieved: Mapped[str] = mapped_column(Text)  # canonical JSON list of {doc_id, chunk_id}
    model_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    policy_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decisions: Mapped[str] = mapped_column(Text)  # canonical JSON list
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON object
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Not hashed: the signature covers the hash (policies.audit_checkpoint.anchor_body).
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditHead(PoliciesBase):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(PoliciesBase):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    head_id: Mapped[int] = mapped_column(BigInteger, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(String(40))  # the exact signed timestamp string
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)  # PEM, so an off-host verifier needs nothing else
    signature: Mapped[str] = mapped_column(Text)  # base64 ed25519 over the canonical payload


class UserKey(PoliciesBase):
    """Per-user random salt behind the audit pseudonym; deleting the row is the erasure."""

    __tablename__ = "audit_user_keys"

    lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsageCounter(PoliciesBase):
    __tablename__ = "usage_counters"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)  # "day" | "minute"
    bucket: Mapped[str] = mapped_column(String(20), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)


class LicenceAcceptance(PoliciesBase):
    __tablename__ = "licence_acceptances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    licence_id: Mapped[str] = mapped_column(String(100))
    accepted_by: Mapped[str] = mapped_column(String(200))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    statement: Mapped[str] = mapped_column(Text)
    meta_licence_ref: Mapped[str | None] = mapped_column(String(400), nullable=True)
    licence_files_sha256: Mapped[str] = mapped_column(Text)  # JSON {file name: sha256}
    audit_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AclFactRow(PoliciesBase):
    """The permissions a synced file's readers were decided from (:mod:`policies.aclstore`)."""

    __tablename__ = "policy_acl_facts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(source, path)
    source: Mapped[str] = mapped_column(String(200), index=True)
    rel_path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
