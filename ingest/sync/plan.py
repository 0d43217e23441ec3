"""The diff: walk entries against the state database, one small batch at a time.

For every walked file the planner decides what the sync must do, cheapest test first:

0. its readers (:mod:`ingest.sync.permissions`): excluded by a rule -> skipped; permissions
   that cannot be read or evaluated -> failed, not indexed (fail closed);
1. known row, final state, same size + mtime + file identity -> unchanged (only permissions may
   differ: a permission-only change rewrites payloads, nothing is read or parsed);
2. otherwise fetch the content through the source (a local file is hashed where it is; an SMB
   file is downloaded to the staging directory) and hash it: equal to the row's hash ->
   unchanged content (refresh the stored stat fields and the payload's ``mtime``);
3. new or changed content: empty or too large -> skipped without parsing; content equal to a
   document already indexed (a rename or a copy) -> reuse its vectors; else parse and embed
   (the fetched copy goes to the parser and is released after it).

Rows in an intent state (``indexing``/``deleting``, left by a killed sync) are always redone.
Only the current batch (``BATCH`` entries) is held in memory; a fetched copy lives until its
file is parsed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from core.db import session_scope
from core.errors import SKIP_CODES as PARSER_SKIP_CODES
from ingest.model import make_doc_id
from ingest.sources.base import (
    Fetched,
    FetchError,
    Rejected,
    Source,
    SourceEntry,
    Unreadable,
)
from ingest.sources.local import SYMLINK_OUTSIDE_ROOT
from ingest.sources.smb import REPARSE_POINT
from ingest.sync.permissions import EXCLUDED, Access, PermissionResolver
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

EMPTY = "ingest.empty"
TOO_LARGE = "ingest.too_large"
# Codes that mean "not a document we index" (skipped); every other code is a failure.
SKIP_CODES = PARSER_SKIP_CODES | {TOO_LARGE, EMPTY, SYMLINK_OUTSIDE_ROOT, REPARSE_POINT, EXCLUDED}


def status_for(code: str) -> str:
    return SKIPPED if code in SKIP_CODES else FAILED


@dataclass(frozen=True)
class Unchanged:
    file_id: int


@dataclass(frozen=True)
class Refresh:
    """Content unchanged; stat fields and/or access (groups, classification) changed."""

    record: FileRecord
    entry: SourceEntry
    access: Access

    @property
    def access_changed(self) -> bool:
        return not self.access.same_readers(
            self.record.allowed_groups, self.record.denied_groups, self.record.classification
        )

    @property
    def facts_changed(self) -> bool:
        return self.record.acl_sha256 != self.access.facts_sha

    @property
    def payload_changed(self) -> bool:
        return self.access_changed or self.record.mtime_ns != self.entry.mtime_ns


@dataclass(frozen=True)
class Index:
    """New or changed content to put in the index (from ``donor``'s vectors when given).
    ``fetched``: the local copy the parser reads; released once the file is parsed."""

    entry: SourceEntry
    record: FileRecord | None
    sha256: str
    access: Access
    donor: FileRecord | None = None
    rename: bool = False
    fetched: Fetched | None = None


@dataclass(frozen=True)
class NotIndexable:
    """A file that ends ``skipped``/``failed`` without (further) parsing."""

    rel_path: str
    entry: SourceEntry | None
    record: FileRecord | None
    sha256: str | None
    access: Access
    code: str
    message: str

    @property
    def status(self) -> str:
        return status_for(self.code)


WorkItem = Unchanged | Refresh | Index | NotIndexable

# Reasons a file was held out for its permissions; when they clear, the file is (re)indexed.
_PERMISSION_CODES = ("ingest.acl_unreadable", "ingest.acl_unevaluable")


class Planner:
    """Streams :data:`WorkItem` s for one source; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        files: Source,
        source: str,
        resolver: PermissionResolver,
        max_file_bytes: int,
        retry_failed: bool = False,
        force: bool = False,
    ) -> None:
        self.engine = engine
        self.files = files
        self.source = source
        self.resolver = resolver
        self.max_file_bytes = max_file_bytes
        self.retry_failed = retry_failed
        self.force = force
        self.unreadable_dirs: list[str] = []  # their files keep their state
        self.unlistable: list[Unreadable] = []  # every directory that could not be listed
        self.walked = 0
        self.claimed_donors: set[str] = set()

    def items(self) -> Iterator[WorkItem]:
        batch: list[SourceEntry | Rejected] = []
        for item in self.files.walk():
            if isinstance(item, Unreadable):
                self.unlistable.append(item)
                if item.keep:
                    self.unreadable_dirs.append(item.rel_dir)
                continue
            self.walked += 1
            batch.append(item)
            if len(batch) >= BATCH:
                yield from self._plan_batch(batch)
                batch = []
        if batch:
            yield from self._plan_batch(batch)

    def _plan_batch(self, batch: list[SourceEntry | Rejected]) -> Iterator[WorkItem]:
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

    def _plan_file(self, entry: SourceEntry, record: FileRecord | None) -> WorkItem:
        access = self.resolver.access(entry)
        if access.excluded or access.failure_code is not None:
            return self._not_readable(entry, record, access)
        held_back = record is not None and record.reason_code in (EXCLUDED, *_PERMISSION_CODES)
        redo = record is not None and (
            record.status in (INDEXING, DELETING)
            or self.force
            or (self.retry_failed and record.status == FAILED)
        )
        if record is not None and not redo and record.status in FINAL_STATES:
            same_stat = (
                record.size == entry.size
                and record.mtime_ns == entry.mtime_ns
                and record.inode == clamp_inode(entry.file_key)
            )
            if same_stat and not held_back:
                refresh = Refresh(record, entry, access)
                changed = refresh.access_changed or refresh.facts_changed
                return refresh if changed else Unchanged(record.id)
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
            fetched = self.files.fetch(entry)
        except FetchError as exc:
            return NotIndexable(entry.rel_path, entry, record, None, access, exc.code, exc.message)
        sha = fetched.sha256
        unchanged = record is not None and not redo and record.status in FINAL_STATES
        if record is not None and unchanged and sha == record.sha256 and not held_back:
            fetched.release()
            return Refresh(record, entry, access)
        redo_in_place = record is not None and record.status == INDEXING and sha == record.sha256
        if redo_in_place and record is not None and record.chunk_count > 0 and not self.force:
            # A killed sync may already have written these points: try them before parsing.
            return Index(entry, record, sha, access, donor=record, fetched=fetched)
        return self._index(entry, record, sha, access, fetched)

    def _not_readable(
        self, entry: SourceEntry, record: FileRecord | None, access: Access
    ) -> WorkItem:
        """Excluded by a rule (skipped), or permissions unreadable/unevaluable (failed): never
        indexed; points it had are removed by the writer."""
        code = EXCLUDED if access.excluded else str(access.failure_code)
        if (
            record is not None
            and record.reason_code == code
            and record.status == status_for(code)
            and record.acl_sha256 == access.facts_sha
            and record.size == entry.size
            and record.mtime_ns == entry.mtime_ns
        ):
            return Unchanged(record.id)
        message = (
            "excluded by the access rules: never indexed" if access.excluded else access.failure
        )
        return NotIndexable(
            entry.rel_path, entry, record, None, access, code, message or "not readable"
        )

    def _index(
        self,
        entry: SourceEntry,
        record: FileRecord | None,
        sha: str,
        access: Access,
        fetched: Fetched,
    ) -> Index:
        if self.force:
            return Index(entry, record, sha, access, fetched=fetched)
        with session_scope(self.engine) as s:
            donors = [d for d in ok_files_with_sha(s, sha) if d.id != (record and record.id)]
        if not donors:
            return Index(entry, record, sha, access, fetched=fetched)
        for donor in donors:  # a same-source document whose file is gone: a rename
            if (
                donor.doc_id not in self.claimed_donors
                and self._is_this_source(donor)
                and not self.files.exists(donor.rel_path)
            ):
                self.claimed_donors.add(donor.doc_id)
                return Index(entry, record, sha, access, donor=donor, rename=True, fetched=fetched)
        return Index(entry, record, sha, access, donor=donors[0], fetched=fetched)

    def _is_this_source(self, donor: FileRecord) -> bool:
        return make_doc_id(self.source, donor.rel_path) == donor.doc_id
