"""``collect_status``: per source, files by state, chunks, the last sync and recent errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from core.db import session_scope
from core.settings import Settings
from ingest.sync.lock import Holder, current_holder, current_holders, store_identity
from ingest.sync.state import (
    FAILED,
    SKIPPED,
    FileRow,
    SourceRow,
    SyncRunRow,
    as_utc,
    open_state,
)

RECENT_ERRORS = 10


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    counters: dict[str, Any]
    error_code: str | None
    error_message: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": self.seconds,
            "counters": self.counters,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }


@dataclass(frozen=True)
class RecentFileIssue:
    """A file the last syncs skipped or failed, with the reason and when."""

    path: str
    status: str
    code: str | None
    message: str | None
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "at": self.at.isoformat(),
        }


@dataclass
class SourceStatus:
    name: str
    root: str
    files: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    last_sync: RunInfo | None = None
    last_completed: RunInfo | None = None
    running: bool = False
    recent_errors: list[RecentFileIssue] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "root": self.root,
            "files": dict(self.files),
            "total_files": sum(self.files.values()),
            "chunks": self.chunks,
            "running": self.running,
            "last_sync": self.last_sync.as_dict() if self.last_sync else None,
            "last_completed_sync": self.last_completed.as_dict() if self.last_completed else None,
            "recent_errors": [e.as_dict() for e in self.recent_errors],
        }


def _run_info(row: SyncRunRow | None) -> RunInfo | None:
    if row is None:
        return None
    started = as_utc(row.started_at)
    assert started is not None
    return RunInfo(
        run_id=row.id,
        status=row.status,
        started_at=started,
        finished_at=as_utc(row.finished_at),
        seconds=row.seconds,
        counters=json.loads(row.counters or "{}"),
        error_code=row.error_code,
        error_message=row.error_message,
    )


def sync_holder(settings: Settings, source: str | None = None) -> Holder | None:
    """The sync of ``source`` running now; without a source, the oldest sync of the store."""
    engine = open_state(settings.db_url)
    if source is not None:
        return current_holder(engine, store_identity(settings), source)
    holders = current_holders(engine, store_identity(settings))
    return holders[0] if holders else None


def collect_status(settings: Settings) -> list[SourceStatus]:
    """Status of every source known to the state database, by name."""
    engine = open_state(settings.db_url)
    running = {h.source for h in current_holders(engine, store_identity(settings))}
    out: list[SourceStatus] = []
    with session_scope(engine) as s:
        for src in s.scalars(select(SourceRow).order_by(SourceRow.name)):
            st = SourceStatus(name=src.name, root=src.root)
            for status, n, chunks in s.execute(
                select(
                    FileRow.status, func.count(), func.coalesce(func.sum(FileRow.chunk_count), 0)
                )
                .where(FileRow.source_id == src.id)
                .group_by(FileRow.status)
            ):
                st.files[str(status)] = int(n)
                if status == "ok":
                    st.chunks = int(chunks)
            runs = select(SyncRunRow).where(SyncRunRow.source_id == src.id)
            st.last_sync = _run_info(s.scalar(runs.order_by(SyncRunRow.id.desc()).limit(1)))
            st.last_completed = _run_info(
                s.scalar(
                    runs.where(SyncRunRow.status == "completed")
                    .order_by(SyncRunRow.id.desc())
                    .limit(1)
                )
            )
            st.running = src.name in running
            for row in s.scalars(
                select(FileRow)
                .where(FileRow.source_id == src.id, FileRow.status.in_([FAILED, SKIPPED]))
                .order_by(FileRow.status, FileRow.updated_at.desc())
                .limit(RECENT_ERRORS * 2)
            ):
                at = as_utc(row.updated_at)
                assert at is not None
                st.recent_errors.append(
                    RecentFileIssue(row.rel_path, row.status, row.reason_code, row.message, at)
                )
            st.recent_errors.sort(key=lambda e: (e.status != FAILED, -e.at.timestamp()))
            del st.recent_errors[RECENT_ERRORS:]
            out.append(st)
    return out
