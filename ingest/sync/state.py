"""Sync state: what the index holds, per source file, and the history of sync runs.

Tables (own metadata, Alembic history in ``ingest/migrations``, version table
``alembic_version_ingest``):

- ``ingest_sources``: one row per synced root (``--source NAME``).
- ``ingest_files``: one row per file the walk reported. ``status`` is ``ok`` (``chunk_count``
  points ``make_point_id(doc_id, 0..chunk_count-1)`` are in the index), ``failed`` /
  ``skipped`` (no points; ``reason_code`` + ``message`` say why), or one of the two intent states
  ``indexing`` / ``deleting``: written *before* the index is touched, so a sync killed at any
  moment leaves a row that says which document to redo.
- ``ingest_sync_runs``: timings and counters of every run (and how it ended).
- ``ingest_sync_lock``: at most one row per source and store; see :mod:`ingest.sync.lock`.
- ``ingest_index_meta``: which embedding model and dimension built the store.
- ``ingest_sync_requests``: syncs handed to the process that owns the embedded store (an
  ``ingest sync`` while the UI serves), with their progress and outcome; see
  :mod:`ingest.sync.handoff`.
- ``ingest_store_owners``: which process owns an embedded store and takes sync requests for
  it (its heartbeat says it is alive).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.db import make_engine, migrate

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"  # ingest/migrations
VERSION_TABLE = "alembic_version_ingest"

OK, FAILED, SKIPPED, INDEXING, DELETING = "ok", "failed", "skipped", "indexing", "deleting"
FINAL_STATES = (OK, FAILED, SKIPPED)
RUN_RUNNING, RUN_COMPLETED, RUN_FAILED, RUN_INTERRUPTED = (
    "running",
    "completed",
    "failed",
    "interrupted",
)

_BigId = BigInteger().with_variant(Integer, "sqlite")
_INODE_MASK = (1 << 63) - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands timezone-aware columns back naive; they were written in UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class IngestBase(DeclarativeBase):
    pass


class SourceRow(IngestBase):
    __tablename__ = "ingest_sources"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    root: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FileRow(IngestBase):
    __tablename__ = "ingest_files"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("ingest_sources.id"), index=True)
    doc_id: Mapped[str] = mapped_column(String(32), unique=True)
    rel_path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    inode: Mapped[int] = mapped_column(BigInteger, default=0)
    mode: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    allowed_groups: Mapped[str] = mapped_column(Text, default="[]")
    denied_groups: Mapped[str] = mapped_column(Text, default="[]")
    # sha256 of the permissions the readers were decided from (an SMB file's descriptor, a
    # local file's POSIX ACL); their bytes live in policies' ACL store for check-access
    acl_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    classification: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seen_run: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SyncRunRow(IngestBase):
    __tablename__ = "ingest_sync_runs"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("ingest_sources.id"), index=True)
    store_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    workers: Mapped[int] = mapped_column(Integer, default=1)
    counters: Mapped[str] = mapped_column(Text, default="{}")  # JSON of SyncSummary counts
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class SyncLockRow(IngestBase):
    __tablename__ = "ingest_sync_lock"

    store_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    store: Mapped[str] = mapped_column(Text)
    token: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    source: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)


class IndexMetaRow(IngestBase):
    __tablename__ = "ingest_index_meta"

    store_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    embedding_model: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)


class SyncRequestRow(IngestBase):
    __tablename__ = "ingest_sync_requests"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    store_key: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(200))
    root: Mapped[str] = mapped_column(Text)
    options: Mapped[str] = mapped_column(Text, default="{}")  # JSON: workers, retry_failed, ...
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requester_pid: Mapped[int] = mapped_column(Integer)
    requester_host: Mapped[str] = mapped_column(String(255))
    owner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON SyncProgress
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON summary
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StoreOwnerRow(IngestBase):
    __tablename__ = "ingest_store_owners"

    store_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    store: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class FileRecord:
    """A detached snapshot of one ``ingest_files`` row (safe to pass between threads)."""

    id: int
    source_id: int
    doc_id: str
    rel_path: str
    status: str
    size: int
    mtime_ns: int
    inode: int
    mode: int
    sha256: str | None
    chunk_count: int
    allowed_groups: tuple[str, ...]
    classification: str | None
    denied_groups: tuple[str, ...] = ()
    acl_sha256: str | None = None
    reason_code: str | None = None

    @staticmethod
    def of(row: FileRow) -> FileRecord:
        return FileRecord(
            id=row.id,
            source_id=row.source_id,
            doc_id=row.doc_id,
            rel_path=row.rel_path,
            status=row.status,
            size=row.size,
            mtime_ns=row.mtime_ns,
            inode=row.inode,
            mode=row.mode,
            sha256=row.sha256,
            chunk_count=row.chunk_count,
            allowed_groups=tuple(json.loads(row.allowed_groups or "[]")),
            classification=row.classification,
            denied_groups=tuple(json.loads(row.denied_groups or "[]")),
            acl_sha256=row.acl_sha256,
            reason_code=row.reason_code,
        )


def open_state(db_url: str) -> Engine:
    """The engine for ``db_url`` with the ingest tables migrated to the newest revision."""
    engine = make_engine(db_url)
    migrate(engine, MIGRATIONS_DIR, VERSION_TABLE)
    return engine


def encode_groups(groups: Iterable[str]) -> str:
    return json.dumps(sorted(set(groups)))


def clamp_inode(inode: int) -> int:
    return inode & _INODE_MASK


def source_id_for(session: Session, name: str, root: str) -> int:
    """Id of source ``name``, created on first use; a moved root is recorded, not refused."""
    row = session.scalar(select(SourceRow).where(SourceRow.name == name))
    if row is None:
        row = SourceRow(name=name, root=root, created_at=utcnow())
        session.add(row)
        session.flush()
    elif row.root != root:
        row.root = root
    return row.id


def files_by_doc_id(session: Session, doc_ids: Sequence[str]) -> dict[str, FileRecord]:
    if not doc_ids:
        return {}
    rows = session.scalars(select(FileRow).where(FileRow.doc_id.in_(list(doc_ids))))
    return {r.doc_id: FileRecord.of(r) for r in rows}


def ok_files_with_sha(session: Session, sha256: str) -> list[FileRecord]:
    rows = session.scalars(
        select(FileRow)
        .where(FileRow.sha256 == sha256, FileRow.status == OK, FileRow.chunk_count > 0)
        .order_by(FileRow.id)
    )
    return [FileRecord.of(r) for r in rows]


MARK_SEEN_BATCH = 500  # ids per UPDATE ... IN (...): well below every database's bound


def mark_seen(session: Session, file_ids: Sequence[int], run_id: int) -> None:
    """Record that this run saw the files (what is left unseen at the end is deleted)."""
    for start in range(0, len(file_ids), MARK_SEEN_BATCH):
        ids = list(file_ids[start : start + MARK_SEEN_BATCH])
        session.execute(update(FileRow).where(FileRow.id.in_(ids)).values(seen_run=run_id))
