"""Everything the audit log signs, defined in one place.

One scheme signs three statements: ed25519 over the canonical JSON of a body, with the key from
``policy.signing_key_file`` (:mod:`policies.keys`):

- **anchor** (checkpoint body) ``{head_id, head_hash, count, time}``: the chain up to record
  ``head_id`` ends in ``head_hash``; ``count`` records were appended up to there (ids run
  1, 2, 3, ... so ``count == head_id``). Every appended record is signed over the anchor of its
  own position (``time`` = the record's time) and that anchor is also shipped to the external
  anchor stores (:mod:`policies.audit_anchors`); ``policies audit checkpoint`` and a retention
  purge sign one more at the head and store it in ``audit_checkpoints``.
- **export manifest** ``{first_id, last_id, count, last_hash, head_id, head_hash,
  records_sha256, since, until, time}``: what an export holds, so an export cut at either end,
  or with lines dropped, edited or reordered, no longer matches its signed manifest.

A signed statement travels as ``{"checkpoint" | "manifest": body, "key_id", "signature"}``
(plus ``public_key`` and the checkpoint's ``id`` where there is room for them); verifiers look
the key up by ``key_id`` among the public keys they trust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert

from policies.audit_chain import canonical_json, format_ts
from policies.keys import key_id, key_id_of_pem, public_pem, sign, verify_signature
from policies.tables import AuditCheckpoint

CHECKPOINT = "checkpoint"
MANIFEST = "manifest"


def anchor_body(head_id: int, head_hash: str, time: str) -> dict[str, Any]:
    """The signed fields of an anchor: the chain up to ``head_id`` ends in ``head_hash``."""
    return {"head_id": head_id, "head_hash": head_hash, "count": head_id, "time": time}


def checkpoint_body(cp: AuditCheckpoint) -> dict[str, Any]:
    """The signed fields of a stored checkpoint."""
    return {
        "head_id": cp.head_id,
        "head_hash": cp.head_hash,
        "count": cp.count,
        "time": cp.created_at,
    }


def manifest_body(
    *,
    first_id: int | None,
    last_id: int | None,
    count: int,
    last_hash: str | None,
    head_id: int,
    head_hash: str,
    records_sha256: str,
    since: datetime | None,
    until: datetime | None,
    filters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The signed fields of an export manifest (see the module docstring). ``filters`` (only
    present when the export was narrowed by event, user or decision) tells the verifier that
    gaps between record ids are the filter's, not a cut."""
    body: dict[str, Any] = {
        "first_id": first_id,
        "last_id": last_id,
        "count": count,
        "last_hash": last_hash,
        "head_id": head_id,
        "head_hash": head_hash,
        "records_sha256": records_sha256,
        "since": format_ts(since) if since is not None else None,
        "until": format_ts(until) if until is not None else None,
        "time": format_ts(datetime.now(UTC)),
    }
    if filters:
        body["filters"] = dict(filters)
    return body


def body_payload(body: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers."""
    return canonical_json(dict(body)).encode("utf-8")


@dataclass(frozen=True)
class Signed:
    """A signed body in transit (an anchor line, an export manifest)."""

    kind: str
    body: dict[str, Any]
    key_id: str
    signature: str
    public_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.kind: self.body, "key_id": self.key_id}
        if self.public_key is not None:
            out["public_key"] = self.public_key
        out["signature"] = self.signature
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Signed | None:
        """The signed statement in ``obj``, or None when it is not one (malformed)."""
        for kind in (CHECKPOINT, MANIFEST):
            body = obj.get(kind)
            if isinstance(body, dict):
                sig, kid, pem = obj.get("signature"), obj.get("key_id"), obj.get("public_key")
                if not isinstance(sig, str):
                    return None
                if not isinstance(kid, str):
                    kid = key_id_of_pem(pem) if isinstance(pem, str) else ""
                return cls(kind, dict(body), kid, sig, pem if isinstance(pem, str) else None)
        return None


def sign_body(
    key: Ed25519PrivateKey, body: Mapping[str, Any], kind: str = CHECKPOINT, *, embed: bool = False
) -> Signed:
    """Sign ``body``; ``embed`` puts the public key in the statement (exports, printed
    checkpoints) so it can be checked where no key is configured."""
    return Signed(
        kind,
        dict(body),
        key_id(key),
        sign(key, body_payload(body)),
        public_pem(key) if embed else None,
    )


class TrustedKeys:
    """The public keys a verifier trusts, by key id (the signing key's own, plus
    ``policy.audit_public_keys``: keys of earlier rotations, or the only keys a compliance host
    holds)."""

    def __init__(self, pems: Sequence[str]) -> None:
        self.by_id: dict[str, str] = {}
        for pem in pems:
            self.by_id[key_id_of_pem(pem)] = pem

    def __bool__(self) -> bool:
        return bool(self.by_id)

    def valid(self, body: Mapping[str, Any], kid: str | None, signature: str | None) -> bool:
        """True if ``signature`` over ``body`` verifies with the trusted key ``kid``."""
        pem = self.by_id.get(kid or "")
        if pem is None or not signature:
            return False
        return verify_signature(pem, body_payload(body), signature)

    def signed_valid(self, st: Signed) -> bool:
        return self.valid(st.body, st.key_id, st.signature)


def signature_valid(
    body: Mapping[str, Any], public_key: str, signature: str, trusted: Sequence[str] = ()
) -> bool:
    """True if ``signature`` over ``body`` verifies with ``public_key`` (one of ``trusted``
    when given)."""
    if trusted and public_key not in trusted:
        return False
    return verify_signature(public_key, body_payload(body), signature)


def checkpoint_valid(cp: AuditCheckpoint, trusted: TrustedKeys) -> bool:
    return trusted.valid(checkpoint_body(cp), key_id_of_pem(cp.public_key), cp.signature)


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
    cp.signature = sign(key, body_payload(checkpoint_body(cp)))
    return cp


def checkpoint_signed(cp: AuditCheckpoint) -> Signed:
    """A stored checkpoint as a portable signed statement (for the anchor stores)."""
    return Signed(CHECKPOINT, checkpoint_body(cp), cp.key_id, cp.signature)


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


def checkpoint_dict(cp: AuditCheckpoint | Signed) -> dict[str, Any]:
    """The portable form of a checkpoint (``policies audit checkpoint``, an anchor store line)
    or of an export manifest (the CSV export's side file)."""
    if isinstance(cp, Signed):
        return cp.to_dict()
    return {
        CHECKPOINT: checkpoint_body(cp),
        "id": cp.id,
        "key_id": cp.key_id,
        "public_key": cp.public_key,
        "signature": cp.signature,
    }
