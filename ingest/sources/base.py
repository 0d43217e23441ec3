"""The source seam: what a sync needs from a tree of files, wherever it lives.

A :class:`Source` (a local or mounted tree, :mod:`ingest.sources.localtree`; an SMB share read
over the network, :mod:`ingest.sources.smb`) gives the planner and the pipeline:

- :meth:`Source.walk`: a stream of :class:`SourceEntry` (with the file's permissions when the
  source has its own), :class:`Rejected` and :class:`Unreadable` items, in a stable order;
- :meth:`Source.fetch`: the content as a *local path* plus its sha256, for the hash check and
  for the parser (parser processes, and Celery workers later, read a path). A remote source
  downloads into its staging directory; :meth:`Fetched.release` deletes that copy once the file
  is parsed (or found unchanged);
- :meth:`Source.exists`: whether a path still exists (rename detection).

Every implementation passes the contract suite in ``tests/sources/contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from policies.readers import Facts

UNREADABLE = "ingest.unreadable"
UNLISTABLE = "ingest.unlistable"
ACL_UNREADABLE = "ingest.acl_unreadable"


@dataclass(frozen=True)
class SourceEntry:
    """A regular file of a source, with what the diff and the permissions need."""

    rel_path: str  # relative to the source root, "/"-separated
    size: int
    mtime_ns: int
    file_key: int  # identity across renames: inode (local), file id + creation time (SMB)
    mode: int = 0
    uid: int = 0
    gid: int = 0
    facts: Facts | None = None  # the file's own permissions (SMB ACL, POSIX when enabled)
    facts_error: tuple[str, str] | None = None  # (code, message): permissions unreadable


@dataclass(frozen=True)
class Rejected:
    """A path recorded as skipped (with ``code``) without being read."""

    rel_path: str
    code: str
    message: str


@dataclass(frozen=True)
class Unreadable:
    """A directory that could not be listed. ``keep``: the files below keep their state (a
    local tree: a transient error); otherwise (an SMB share that denies the service account)
    what was indexed below it leaves the index. Reported either way."""

    rel_dir: str
    message: str
    keep: bool = True


WalkItem = SourceEntry | Rejected | Unreadable


class FetchError(Exception):
    """The content of one file could not be read (the sync records it and goes on)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Fetched:
    """A file's content at a local ``path``; ``release`` once the parser is done with it."""

    path: Path
    sha256: str
    _release: Callable[[], None] | None = field(default=None, repr=False)

    def release(self) -> None:
        fn, self._release = self._release, None
        if fn is not None:
            fn()


class Source(Protocol):
    kind: str  # "local" | "smb"
    root: str  # what ``ingest status`` shows: a path, or smb://server/share/path
    has_acls: bool  # the files' own ACLs decide their readers (rules are an override layer)

    def walk(self) -> Iterator[WalkItem]: ...

    def fetch(self, entry: SourceEntry) -> Fetched:
        """The content as a local file, or :class:`FetchError`."""

    def exists(self, rel_path: str) -> bool: ...

    def close(self) -> None:
        """Release connections and staged copies. Idempotent."""
