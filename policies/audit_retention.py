"""Signed checkpoints, export and the retention purge of the audit log.

A checkpoint is ``{head_id, head_hash, count, time}`` signed with the ed25519 key from
``policy.signing_key_file``. Copy checkpoints off the host (``policies audit checkpoint`` prints
one; every export ends with one): whoever later holds a checkpoint can prove that the log's
first ``head_id`` records are unchanged, even against someone who can rewrite the database.

Retention: :func:`purge_older_than` deletes the oldest records (a contiguous prefix of the
chain) after storing a signed checkpoint at the last deleted record, so verification of the
remaining chain starts from that checkpoint. The EU AI Act (Art. 26(6)) asks deployers of
high-risk AI systems to keep the logs the system generates for at least six months, unless other
Union or national law says otherwise; purging below 183 days therefore needs an explicit
override.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select

from core.errors import AuditUsageError
from policies.audit import AuditLog, begin_locked
from policies.audit_chain import FIELDS, canonical_json, format_ts
from policies.audit_checkpoint import checkpoint_dict, make_checkpoint, store_checkpoint
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
    return PurgeResult(int(res.rowcount), int(through), cp_id, format_ts(cutoff))


def _export_rows(
    log: AuditLog,
    since: datetime | None,
    until: datetime | None,
    event_type: str | None = None,
    user_id: str | None = None,
) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        batch = log.records(
            since=since,
            until=until,
            event_type=event_type,
            user_id=user_id,
            after_id=after,
            limit=2000,
        )
        if not batch:
            return
        yield from batch
        after = batch[-1]["id"]


def export(
    log: AuditLog,
    key: Ed25519PrivateKey,
    out: TextIO,
    fmt: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    user_id: str | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[int, AuditCheckpoint]:
    """Write records as JSON lines or CSV, then a fresh signed checkpoint of the whole chain.

    JSON lines: one record per line, then one ``{"checkpoint": ...}`` line. CSV: the records
    only (list/object columns as JSON); the caller stores the returned checkpoint beside it.
    ``event_type``, ``user_id`` and ``keep`` (a predicate on the record) narrow the export the
    way the compliance page's filters narrow its table."""
    if fmt not in ("jsonl", "csv"):
        raise AuditUsageError(
            f"unknown export format {fmt!r}: use jsonl or csv", code="audit.bad_format"
        )
    n = 0
    columns = [*FIELDS, "hash"]
    writer = csv.DictWriter(out, fieldnames=columns) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for rec in _export_rows(log, since, until, event_type, user_id):
        if keep is not None and not keep(rec):
            continue
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
            out.write(canonical_json(rec) + "\n")
        n += 1
    cp = create_checkpoint(log, key)
    if fmt == "jsonl":
        out.write(canonical_json(checkpoint_dict(cp)) + "\n")
    return n, cp
