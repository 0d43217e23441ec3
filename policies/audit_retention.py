"""Signed checkpoints, export and the retention purge of the audit log.

A checkpoint is ``{head_id, head_hash, count, time}`` signed with the ed25519 key from
``policy.signing_key_file`` (:mod:`policies.audit_checkpoint`); it is stored and written to the
external anchor stores. Copy checkpoints off the host too (``policies audit checkpoint`` prints
one): whoever later holds a checkpoint can prove that the log's first ``head_id`` records are
unchanged, even against someone who can rewrite the database.

Export: the records, then a signed manifest (first and last id, count, last hash, the chain head,
sha256 of the records' canonical lines, the time window). An export is itself audited
(``admin_change``, ``audit.export``).

Retention: :func:`purge_older_than` deletes the oldest records (a contiguous prefix of the
chain) after storing a signed checkpoint at the last deleted record, so verification of the
remaining chain starts from that checkpoint. The EU AI Act (Art. 26(6)) asks deployers of
high-risk AI systems to keep the logs the system generates for at least six months, unless other
Union or national law says otherwise; purging below 183 days therefore needs an explicit
override.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select

from core.errors import AuditUsageError
from policies.audit import AuditLog, begin_locked
from policies.audit_chain import FIELDS, canonical_json, format_ts
from policies.audit_checkpoint import (
    MANIFEST,
    Signed,
    checkpoint_signed,
    make_checkpoint,
    manifest_body,
    sign_body,
    store_checkpoint,
)
from policies.tables import AuditCheckpoint, AuditRecordRow

RETENTION_FLOOR_DAYS = 183


def create_checkpoint(log: AuditLog, key: Ed25519PrivateKey) -> AuditCheckpoint:
    """Sign and store a checkpoint at the current chain head."""
    with log.engine.connect() as conn:
        try:
            head = begin_locked(conn)
            cp = make_checkpoint(head.last_id, head.last_hash, key)
            store_checkpoint(conn, cp)
            conn.commit()
        except Exception:
            conn.rollback()
            raise
    log.anchors.publish([checkpoint_signed(cp)])
    return cp


@dataclass(frozen=True)
class PurgeResult:
    deleted: int
    through_id: int | None
    checkpoint_id: int | None
    cutoff: str


def purge_older_than(
    log: AuditLog, key: Ed25519PrivateKey, days: int, *, allow_below_floor: bool = False
) -> PurgeResult:
    """Delete records older than ``days`` days, anchored by a signed checkpoint."""
    if days < 1:
        raise AuditUsageError("retention must be at least one day", code="audit.bad_retention")
    if days < RETENTION_FLOOR_DAYS and not allow_below_floor:
        raise AuditUsageError(
            f"refusing to purge records younger than {RETENTION_FLOOR_DAYS} days: deployers of "
            "high-risk AI systems must keep logs for at least six months (EU AI Act Art. "
            "26(6)); pass the override only if your legal basis allows a shorter period",
            code="audit.retention_floor",
        )
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with log.engine.connect() as conn:
        try:
            begin_locked(conn)
            through = conn.execute(
                select(func.max(AuditRecordRow.id)).where(AuditRecordRow.ts < cutoff)
            ).scalar()
            if through is None:
                conn.rollback()
                return PurgeResult(0, None, None, format_ts(cutoff))
            through_hash = conn.execute(
                select(AuditRecordRow.hash).where(AuditRecordRow.id == through)
            ).scalar_one()
            cp = make_checkpoint(int(through), through_hash, key)
            cp_id = store_checkpoint(conn, cp)
            res = conn.execute(delete(AuditRecordRow).where(AuditRecordRow.id <= through))
            conn.commit()
        except Exception:
            conn.rollback()
            raise
    log.anchors.publish([checkpoint_signed(cp)])
    return PurgeResult(int(res.rowcount), int(through), cp_id, format_ts(cutoff))


def export(
    log: AuditLog,
    key: Ed25519PrivateKey,
    out: TextIO,
    fmt: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    policy_version: str | None = None,
    event_type: str | None = None,
    user_id: str | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    filters: Mapping[str, Any] | None = None,
) -> tuple[int, Signed]:
    """Write records as JSON lines or CSV, then sign a manifest of what was written; audit the
    export (as ``actor``). Returns the record count and the signed manifest.

    JSON lines: one record per line, then one ``{"manifest": ...}`` line. CSV: the records
    only (list/object columns as JSON); the caller stores the manifest beside it. Either way
    ``records_sha256`` is the sha256 of the records' canonical JSON lines, each ending in a
    newline (what the JSON-lines file holds before its manifest).

    ``event_type``, ``user_id`` and ``keep`` (a predicate on the record) narrow the export the
    way the compliance page's filters narrow its table; ``filters`` describes that narrowing
    for the reader and is signed in the manifest (a filtered export has gaps in its ids, which
    the verifier then allows: each record still carries its own hash and signature, and the
    manifest's digest covers exactly the records exported)."""
    if fmt not in ("jsonl", "csv"):
        raise AuditUsageError(
            f"unknown export format {fmt!r}: use jsonl or csv", code="audit.bad_format"
        )
    head_id, head_hash = log.head()
    n = 0
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    digest = hashlib.sha256()
    columns = [*FIELDS, "hash", "key_id", "signature"]
    writer = csv.DictWriter(out, fieldnames=columns) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for rec in log.iter_records(since=since, until=until, event_type=event_type, user_id=user_id):
        if rec["id"] > head_id:
            break  # appended while exporting: the next export has it
        if keep is not None and not keep(rec):
            continue
        line = canonical_json(rec) + "\n"
        digest.update(line.encode("utf-8"))
        if writer is not None:
            writer.writerow(
                {
                    k: (
                        json.dumps(v, ensure_ascii=False, sort_keys=True)
                        if isinstance(v, (list, dict))
                        else v
                    )
                    for k, v in rec.items()
                }
            )
        else:
            out.write(line)
        first = first or rec
        last = rec
        n += 1
    body = manifest_body(
        first_id=first["id"] if first else None,
        last_id=last["id"] if last else None,
        count=n,
        last_hash=last["hash"] if last else None,
        head_id=head_id,
        head_hash=head_hash,
        records_sha256=digest.hexdigest(),
        since=since,
        until=until,
        filters=dict(filters or {}),
    )
    manifest = sign_body(key, body, MANIFEST, embed=True)
    if fmt == "jsonl":
        out.write(canonical_json(manifest.to_dict()) + "\n")
    log.append(
        "admin_change",
        user_id=actor,
        policy_version=policy_version,
        details={
            "action": "audit.export",
            "actor": actor,
            "format": fmt,
            "first_id": body["first_id"],
            "last_id": body["last_id"],
            "count": n,
            "since": body["since"],
            "until": body["until"],
            "sha256": body["records_sha256"],
            "filters": body.get("filters") or None,
        },
    )
    return n, manifest
