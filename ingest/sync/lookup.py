"""Read-only questions other packages ask about the synced files.

The UI (audit pages, citations, the empty chat) needs a few facts that live in the ingest
state tables: which documents match part of a path, a document's path, a source's root, and
which sources and files a set of groups may read. Asking here keeps those tables private to
ingest: callers never query them, so the schema can change without touching the UI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from core.db import session_scope
from core.settings import Settings
from ingest.sync.state import (
    OK,
    RUN_COMPLETED,
    FileRow,
    SourceRow,
    SyncRunRow,
    as_utc,
    open_state,
)

_IN_BATCH = 500


def doc_ids_by_path(settings: Settings, fragment: str) -> frozenset[str]:
    """Ids of the synced files whose path contains ``fragment`` (case-insensitive)."""
    needle = f"%{fragment.strip().lower()}%"
    engine = open_state(settings.db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(FileRow.doc_id).where(FileRow.rel_path.ilike(needle))).all()
    return frozenset(str(r[0]) for r in rows)


def doc_paths(settings: Settings, doc_ids: Iterable[str]) -> dict[str, str]:
    """``doc_id -> "source/path"`` for the ids the ingest state knows."""
    ids = sorted(set(doc_ids))
    if not ids:
        return {}
    engine = open_state(settings.db_url)
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), _IN_BATCH):
            rows = conn.execute(
                select(FileRow.doc_id, FileRow.rel_path, SourceRow.name)
                .join(SourceRow, SourceRow.id == FileRow.source_id)
                .where(FileRow.doc_id.in_(ids[start : start + _IN_BATCH]))
            ).all()
            out.update({str(d): f"{s}/{p}" for d, p, s in rows})
    return out


def source_root(settings: Settings, source: str) -> Path | None:
    """The folder source ``source`` was last synced from, or None for an unknown source."""
    engine = open_state(settings.db_url)
    with engine.connect() as conn:
        root = conn.execute(select(SourceRow.root).where(SourceRow.name == source)).scalar()
    return Path(root) if root else None


@dataclass(frozen=True)
class ReadableSource:
    """A source as one reader sees it: how many of its indexed files they may read."""

    name: str
    files: int
    last_sync: datetime | None
    recent_doc_ids: tuple[str, ...] = field(default=())


def readable_sources(
    settings: Settings, groups: frozenset[str], recent: int = 6
) -> list[ReadableSource]:
    """Per source, the indexed files that any of ``groups`` may read, and when the source last
    finished a sync; ``recent_doc_ids`` are the most recently indexed of those files.

    Sources with no readable file are left out (a user learns nothing about the others). An
    empty ``groups`` reads nothing: fail closed, like retrieval."""
    if not groups:
        return []
    engine = open_state(settings.db_url)
    out: list[ReadableSource] = []
    with session_scope(engine) as s:
        last_sync = dict(
            s.execute(
                select(SyncRunRow.source_id, func.max(SyncRunRow.finished_at))
                .where(SyncRunRow.status == RUN_COMPLETED)
                .group_by(SyncRunRow.source_id)
            ).all()
        )
        for src in s.scalars(select(SourceRow).order_by(SourceRow.name)):
            readable: list[tuple[datetime | None, str]] = []
            rows = s.execute(
                select(FileRow.doc_id, FileRow.allowed_groups, FileRow.indexed_at).where(
                    FileRow.source_id == src.id, FileRow.status == OK, FileRow.chunk_count > 0
                )
            )
            for doc_id, allowed, indexed_at in rows:
                if groups & set(json.loads(allowed or "[]")):
                    readable.append((as_utc(indexed_at), str(doc_id)))
            if not readable:
                continue
            readable.sort(key=lambda r: (r[0] is not None, r[0] or datetime.min, r[1]))
            out.append(
                ReadableSource(
                    name=src.name,
                    files=len(readable),
                    last_sync=as_utc(last_sync.get(src.id)),
                    recent_doc_ids=tuple(d for _, d in reversed(readable[-recent:])),
                )
            )
    return out
