"""Upserts of files' rows in the sync-state database (the writer's intent and commit steps).

:func:`write_file_row` writes one row; :func:`refresh_rows` rewrites the rows of many known
files in one executemany (a permission change on a folder touches every file below it: one
ORM update per file cost 3.6 ms, 87 % of a permission-only re-sync of 1,200 files).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ingest.model import make_doc_id
from ingest.sources.base import SourceEntry
from ingest.sync.state import FileRecord, FileRow, clamp_inode, encode_groups, utcnow


@dataclass(frozen=True)
class RowContext:
    """Which source and sync run the rows belong to."""

    source: str
    source_id: int
    run_id: int


def write_file_row(
    ctx: RowContext,
    s: Session,
    entry: SourceEntry | None,
    record: FileRecord | None,
    sha: str | None,
    access: Any,
    status: str,
    chunk_count: int,
    code: str | None,
    message: str | None,
    *,
    rel_path: str | None = None,
    indexed_at: datetime | None = None,
    keep_reason: bool = False,
) -> None:
    rel = rel_path if rel_path is not None else (entry.rel_path if entry else "")
    doc_id = record.doc_id if record else make_doc_id(ctx.source, rel)
    values: dict[str, Any] = {
        "rel_path": rel,
        "status": status,
        "sha256": sha,
        "chunk_count": chunk_count,
        "allowed_groups": encode_groups(access.groups),
        "denied_groups": encode_groups(access.denied),
        "acl_sha256": access.facts_sha,
        "classification": access.classification,
        "seen_run": ctx.run_id,
        "updated_at": utcnow(),
    }
    if not keep_reason:
        values["reason_code"] = code
        values["message"] = message
    if entry is not None:
        values.update(
            size=entry.size,
            mtime_ns=entry.mtime_ns,
            inode=clamp_inode(entry.file_key),
            mode=entry.mode,
        )
    if indexed_at is not None:
        values["indexed_at"] = indexed_at
    if record is None:
        existing = s.scalar(select(FileRow.id).where(FileRow.doc_id == doc_id))
        if existing is None:
            values.setdefault("size", 0)
            values.setdefault("mtime_ns", 0)
            values.setdefault("inode", 0)
            values.setdefault("mode", 0)
            s.add(FileRow(source_id=ctx.source_id, doc_id=doc_id, **values))
            s.flush()
            return
    s.execute(update(FileRow).where(FileRow.doc_id == doc_id).values(**values))


def refresh_rows(
    ctx: RowContext,
    s: Session,
    rows: list[tuple[FileRecord, SourceEntry, Any, str]],
    *,
    keep_reason: bool,
) -> None:
    """Rewrite known files' rows (content unchanged): ``(record, entry, access, status)``."""
    if not rows:
        return
    now = utcnow()
    params: list[dict[str, Any]] = []
    for record, entry, access, status in rows:
        values: dict[str, Any] = {
            "id": record.id,
            "rel_path": entry.rel_path,
            "status": status,
            "sha256": record.sha256,
            "chunk_count": record.chunk_count,
            "allowed_groups": encode_groups(access.groups),
            "denied_groups": encode_groups(access.denied),
            "acl_sha256": access.facts_sha,
            "classification": access.classification,
            "seen_run": ctx.run_id,
            "updated_at": now,
            "size": entry.size,
            "mtime_ns": entry.mtime_ns,
            "inode": clamp_inode(entry.file_key),
            "mode": entry.mode,
        }
        if not keep_reason:
            values["reason_code"] = None
            values["message"] = None
        params.append(values)
    s.execute(update(FileRow), params)
