"""The chain of the audit log: canonical serialization, record hash, verification walk.

``hash = sha256(prev_hash + canonical_json(record))`` where the record is every field of
:data:`FIELDS` (the id and ``prev_hash`` included), serialized as JSON with sorted keys, no
spaces and UTF-8. The hash alone has no key, so anyone with write access could recompute it:
what makes the chain *keyed* is the ed25519 signature every record carries over its position and
hash (:mod:`policies.audit_checkpoint`), checked here through ``signature_ok``. Records written
before signatures existed (an upgraded log) are unsigned; they are accepted only before the
first signed record, whose signature pins their hashes.

Verification walks records in id order from genesis (or from the signed checkpoint that anchors
the oldest record left after a retention purge) and reports the first record where the chain
breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from policies.tables import GENESIS_HASH, AuditRecordRow

JSON_FIELDS = ("groups", "retrieved", "decisions", "details")
FIELDS = (
    "id",
    "ts",
    "event_type",
    "user_pseudonym",
    "groups",
    "question",
    "question_hmac",
    "retrieved",
    "model_name",
    "model_sha256",
    "policy_version",
    "decisions",
    "answer",
    "answer_hmac",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "details",
    "prev_hash",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def format_ts(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def record_dict(row: AuditRecordRow) -> dict[str, Any]:
    """The hashed content of a stored row (JSON columns parsed, time canonical)."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(row, name)
        if name in JSON_FIELDS:
            value = json.loads(value) if value is not None else None
        elif name == "ts":
            value = format_ts(value)
        out[name] = value
    return out


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """The record's hash; keys outside :data:`FIELDS` (``hash``, ``key_id``, ``signature`` of an
    exported line) are not hashed."""
    body = {k: record[k] for k in FIELDS if k in record}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """Where verification starts: genesis, or a checkpoint ``(head_id, head_hash)``."""

    after_id: int
    prev_hash: str
    checkpoint_id: int | None = None


GENESIS = Anchor(0, GENESIS_HASH)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_id: int
    first_bad_id: int | None = None
    reason_code: str = "audit.intact"
    message: str = "audit chain intact"
    anchor_checkpoint_id: int | None = None
    anchor_head_id: int | None = None
    """The newest external anchor (None: none was read)."""
    anchor_time: str | None = None
    anchors_checked: int = 0
    unanchored: int = 0
    """Records after the newest external anchor: their deletion could not be detected."""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SignatureCheck = Callable[[AuditRecordRow], bool | None]
"""True: the record's signature verifies with a trusted key; False: it does not; None: the
record carries none."""


@dataclass
class ChainWalker:
    """Feed rows in id order; the first break is kept in ``failure``."""

    anchor: Anchor
    checkpoints_at: dict[int, list[tuple[int, str]]]  # record id -> [(checkpoint id, hash)]
    signature_ok: SignatureCheck
    head_id: int
    expected_id: int = 0
    signed_seen: bool = False
    prev_hash: str = ""
    checked: int = 0
    failure: tuple[int, str, str] | None = None

    def __post_init__(self) -> None:
        self.expected_id = self.anchor.after_id + 1
        self.prev_hash = self.anchor.prev_hash

    def feed(self, rows: Iterable[AuditRecordRow]) -> bool:
        return all(self._check(row) for row in rows)

    def _fail(self, rid: int, code: str, msg: str) -> bool:
        self.failure = (rid, code, msg)
        return False

    def _check(self, row: AuditRecordRow) -> bool:
        if row.id > self.head_id:
            return self._fail(
                row.id,
                "audit.record_unregistered",
                f"record {row.id} lies beyond the chain head {self.head_id}: it was not "
                "appended through the log",
            )
        if row.id < self.expected_id:
            return self._fail(
                row.id,
                "audit.record_out_of_place",
                f"record {row.id} precedes the verification anchor",
            )
        if row.id > self.expected_id:
            return self._fail(
                self.expected_id,
                "audit.record_missing",
                f"record {self.expected_id} is missing (the next stored record is {row.id})",
            )
        if row.prev_hash != self.prev_hash:
            return self._fail(
                row.id,
                "audit.chain_broken",
                f"record {row.id} does not link to record {row.id - 1}: a record before it was "
                "inserted, deleted, replaced or reordered",
            )
        if chain_hash(row.prev_hash, record_dict(row)) != row.hash:
            return self._fail(
                row.id, "audit.record_altered", f"record {row.id} was altered after it was written"
            )
        signed = self.signature_ok(row)
        if signed is False:
            return self._fail(
                row.id,
                "audit.signature_invalid",
                f"record {row.id} does not carry a valid signature of a trusted key: it was "
                "rewritten, or written without the signing key",
            )
        if signed is None and self.signed_seen:
            return self._fail(
                row.id,
                "audit.signature_missing",
                f"record {row.id} is unsigned although earlier records are signed: it was "
                "written without the signing key, or its signature was removed",
            )
        self.signed_seen = self.signed_seen or bool(signed)
        for cp_id, cp_hash in self.checkpoints_at.get(row.id, []):
            if cp_hash != row.hash:
                return self._fail(
                    row.id,
                    "audit.checkpoint_mismatch",
                    f"record {row.id} differs from signed checkpoint {cp_id}: the chain was "
                    "rewritten",
                )
        self.prev_hash = row.hash
        self.expected_id += 1
        self.checked += 1
        return True
