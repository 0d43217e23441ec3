"""The diff: walk entries against the state database, one small batch at a time.

For every walked file the planner decides what the sync must do, cheapest test first:

1. known row, final state, same size + mtime + inode -> unchanged (only permissions may differ);
2. otherwise hash the content (sha256): equal to the row's hash -> unchanged content (refresh
   the stored stat fields and the payload's ``mtime``);
3. new or changed content: empty or too large -> skipped without parsing; content equal to a
   document already indexed (a rename or a copy) -> reuse its vectors; else parse and embed.

Rows in an intent state (``indexing``/``deleting``, left by a killed sync) are always redone.
Only the current batch (``BATCH`` entries) is held in memory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from core.db import session_scope
from core.errors import SKIP_CODES as PARSER_SKIP_CODES
from ingest.model import make_doc_id
from ingest.sources.local import SYMLINK_OUTSIDE_ROOT, FileEntry, Rejected, Unreadable, walk
from ingest.sync.permissions import Access, PermissionResolver
from ingest.sync.state import (
    DELETING,
    FAILED,
    FINAL_STATES,
    INDEXING,
    SKIPPED,
    FileRecord,
    clamp_inode,
    files_by_doc_id,
    ok_files_with_sha,
)

BATCH = 256
_READ_BLOCK = 1 << 20

EMPTY = "ingest.empty"
TOO_LARGE = "ingest.too_large"
UNREADABLE = "ingest.unreadable"
UNREADABLE_DIR = "ingest.unreadable_dir"
# Codes that mean "not a document we index" (skipped); every other code is a failure.
SKIP_CODES = PARSER_SKIP_CODES | {TOO_LARGE, EMPTY, SYMLINK_OUTSIDE_ROOT}


def status_for(code: str) -> str:
    return SKIPPED if code in SKIP_CODES else FAILED


@dataclass(frozen=True)
class Unchanged:
    file_id: int


@dataclass(frozen=True)
class Refresh:
    """Content unchanged; stat fields and/or access (groups, classification) changed."""

    record: FileRecord
    entry: FileEntry
    access: Access

    @property
    def access_changed(self) -> bool:
        return (
            self.record.allowed_groups != self.access.groups
            or self.record.classification != self.access.classification
        )

    @property
    def payload_changed(self) -> bool:
        return self.access_changed or self.record.mtime_ns != self.entry.mtime_ns


@dataclass(frozen=True)
class Index:
    """New or changed content to put in the index (from ``donor``'s vectors when given)."""

    entry: FileEntry
    record: FileRecord | None
    sha256: str
    access: Access
    donor: FileRecord | None = None
    rename: bool = False


@dataclass(frozen=True)
class NotIndexable:
    """A file that ends ``skipped``/``failed`` without (further) parsing."""

    rel_path: str
    entry: FileEntry | None
    record: FileRecord | None
    sha256: str | None
    access: Access
    code: str
    message: str

    @property
    def status(self) -> str:
        return status_for(self.code)


WorkItem = Unchanged | Refresh | Index | NotIndexable


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            h.update(block)
    return h.hexdigest()


class Planner:
    """Streams :data:`WorkItem` s for one source; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        root: Path,
        source: str,
        resolver: PermissionResolver,
        max_file_bytes: int,
        retry_failed: bool = False,
        force: bool = False,
    ) -> None:
        self.engine = engine
        self.root = root
        self.source = source
        self.resolver = resolver
        self.max_file_bytes = max_file_bytes
        self.retry_failed = retry_failed
        self.force = force
        self.unreadable_dirs: list[str] = []
        self.unreadable: list[Unreadable] = []
        self.walked = 0
        self.claimed_donors: set[str] = set()

    def items(self) -> Iterator[WorkItem]:
        batch: list[FileEntry | Rejected] = []
        for item in walk(self.root):
            if isinstance(item, Unreadable):
                self.unreadable_dirs.append(item.rel_dir)
                self.unreadable.append(item)
                continue
            self.walked += 1
            batch.append(item)
            if len(batch) >= BATCH:
                yield from self._plan_batch(batch)
                batch = []
        if batch:
            yield from self._plan_batch(batch)

    def _plan_batch(self, batch: list[FileEntry | Rejected]) -> Iterator[WorkItem]:
        doc_ids = [make_doc_id(self.source, e.rel_path) for e in batch]
        with session_scope(self.engine) as s:
            rows = files_by_doc_id(s, doc_ids)
        for item, doc_id in zip(batch, doc_ids, strict=True):
            record = rows.get(doc_id)
            if isinstance(item, Rejected):
                yield self._rejected(item, record)
            else:
                yield self._plan_file(item, record)

    def _rejected(self, item: Rejected, record: FileRecord | None) -> WorkItem:
        """A path refused without reading it: reported once, then unchanged while it stays
        refused (like a failed file, until ``--retry-failed``)."""
        if (
            record is not None
            and record.sha256 is None
            and record.status == status_for(item.code)
            and not (self.retry_failed and record.status == FAILED)
        ):
            return Unchanged(record.id)
        return NotIndexable(
            item.rel_path, None, record, None, Access((), None), item.code, item.message
        )

    def _plan_file(self, entry: FileEntry, record: FileRecord | None) -> WorkItem:
        access = self.resolver.access(entry.rel_path, entry.mode, entry.gid)
        redo = record is not None and (
            record.status in (INDEXING, DELETING)
            or self.force
            or (self.retry_failed and record.status == FAILED)
        )
        if record is not None and not redo and record.status in FINAL_STATES:
            same_stat = (
                record.size == entry.size
                and record.mtime_ns == entry.mtime_ns
                and record.inode == clamp_inode(entry.inode)
            )
            if same_stat:
                refresh = Refresh(record, entry, access)
                return refresh if refresh.access_changed else Unchanged(record.id)
        if entry.size == 0:
            return NotIndexable(
                entry.rel_path, entry, record, None, access, EMPTY, "the file is empty"
            )
        if entry.size > self.max_file_bytes:
            limit_mb = self.max_file_bytes / 1_000_000
            return NotIndexable(
                entry.rel_path,
                entry,
                record,
                None,
                access,
                TOO_LARGE,
                f"the file has {entry.size / 1_000_000:.1f} MB, more than ingest.max_file_mb "
                f"= {limit_mb:g}",
            )
        try:
            sha = file_sha256(entry.path)
        except OSError as exc:
            return NotIndexable(
                entry.rel_path,
                entry,
                record,
                None,
                access,
                UNREADABLE,
                f"cannot read the file: {exc.strerror or exc}",
            )
        if record is None:
            return self._index(entry, record, sha, access)
        if not redo and record.status in FINAL_STATES and sha == record.sha256:
            return Refresh(record, entry, access)
        redo_in_place = record.status == INDEXING and sha == record.sha256
        if redo_in_place and record.chunk_count > 0 and not self.force:
            # A killed sync may already have written these points: try them before parsing.
            return Index(entry, record, sha, access, donor=record)
        return self._index(entry, record, sha, access)

    def _index(
        self, entry: FileEntry, record: FileRecord | None, sha: str, access: Access
    ) -> Index:
        if self.force:
            return Index(entry, record, sha, access)
        with session_scope(self.engine) as s:
            donors = [d for d in ok_files_with_sha(s, sha) if d.id != (record and record.id)]
        if not donors:
            return Index(entry, record, sha, access)
        for donor in donors:  # a same-source document whose file is gone: a rename
            if (
                donor.doc_id not in self.claimed_donors
                and self._is_this_source(donor)
                and not os.path.lexists(self.root / donor.rel_path)
            ):
                self.claimed_donors.add(donor.doc_id)
                return Index(entry, record, sha, access, donor=donor, rename=True)
        return Index(entry, record, sha, access, donor=donors[0])

    def _is_this_source(self, donor: FileRecord) -> bool:
        return make_doc_id(self.source, donor.rel_path) == donor.doc_id
