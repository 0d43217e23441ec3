"""Signed checkpoints of the audit chain: the one place their signed body is defined.

A checkpoint is ``{head_id, head_hash, count, time}`` signed with the ed25519 key from
``policy.signing_key_file``. It is created on demand (``policies audit checkpoint``), at the end
of every export, and at the last record a retention purge deletes; whoever holds a copy can later
prove that the log's first ``count`` records are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert

from policies.audit_chain import canonical_json, format_ts
from policies.keys import key_id, public_pem, sign, verify_signature
from policies.tables import AuditCheckpoint


def checkpoint_body(cp: AuditCheckpoint) -> dict[str, Any]:
    """The signed fields of a checkpoint."""
    return {
        "head_id": cp.head_id,
        "head_hash": cp.head_hash,
        "count": cp.count,
        "time": cp.created_at,
    }


def body_payload(body: Mapping[str, Any]) -> bytes:
    """The bytes a checkpoint signature covers."""
    return canonical_json(dict(body)).encode("utf-8")


def checkpoint_payload(cp: AuditCheckpoint) -> bytes:
    return body_payload(checkpoint_body(cp))


def checkpoint_dict(cp: AuditCheckpoint) -> dict[str, Any]:
    """The portable form (export line, side file, ``policies audit checkpoint``)."""
    return {
        "checkpoint": checkpoint_body(cp),
        "id": cp.id,
        "key_id": cp.key_id,
        "public_key": cp.public_key,
        "signature": cp.signature,
    }


def signature_valid(
    body: Mapping[str, Any], public_key: str, signature: str, trusted: Sequence[str] = ()
) -> bool:
    """True if ``signature`` over ``body`` verifies with ``public_key`` (one of ``trusted``
    when given)."""
    if trusted and public_key not in trusted:
        return False
    return verify_signature(public_key, body_payload(body), signature)


def checkpoint_valid(cp: AuditCheckpoint, trusted: Sequence[str] = ()) -> bool:
    return signature_valid(checkpoint_body(cp), cp.public_key, cp.signature, trusted)


def make_checkpoint(head_id: int, head_hash: str, key: Ed25519PrivateKey) -> AuditCheckpoint:
    cp = AuditCheckpoint(
        head_id=head_id,
        head_hash=head_hash,
        count=head_id,
        created_at=format_ts(datetime.now(UTC)),
        key_id=key_id(key),
        public_key=public_pem(key),
        signature="",
    )
    cp.signature = sign(key, checkpoint_payload(cp))
    return cp


def store_checkpoint(conn: Connection, cp: AuditCheckpoint) -> int:
    res = conn.execute(
        insert(AuditCheckpoint)
        .values(
            head_id=cp.head_id,
            head_hash=cp.head_hash,
            count=cp.count,
            created_at=cp.created_at,
            key_id=cp.key_id,
            public_key=cp.public_key,
            signature=cp.signature,
        )
        .returning(AuditCheckpoint.id)
    )
    cp.id = int(res.scalar_one())
    return cp.id
