"""Walk a source tree as a stream of file entries (never a list of the corpus).

Rules (documented in docs/ingest.md):

- Only regular files are yielded. FIFOs, sockets and devices are ignored (opening a FIFO would
  block the sync).
- Hidden entries (name starting with ``.``) and office/editor temp and lock files are ignored:
  ``~$*``, ``.~lock*``, ``~*.tmp``, ``*.tmp``, ``*.temp``, ``*.swp``, ``*~``, ``.DS_Store``,
  ``Thumbs.db``, ``desktop.ini``, ``*.part``, ``*.crdownload``. Ignored entries are not state:
  they never appear in the database.
- Symlinks are never followed. A symlink whose target lies outside the root is reported as
  :class:`Rejected` (code ``ingest.symlink_outside_root``) so the admin sees it; a symlink whose
  target lies inside the root is ignored, because its target is indexed under its own path (no
  duplicate chunks, no loops).
- A directory that cannot be listed is reported as :class:`Unreadable`; the sync keeps the
  state of the files below it instead of treating them as deleted.
- A file whose name (or a directory name on its path) is not valid UTF-8 (a Latin-1 name on a
  Linux share, say) is reported as :class:`Rejected` (code ``ingest.bad_file_name``, recorded as
  failed) under a printable form of its path: the bytes that are not UTF-8 are written as
  ``\\xNN`` (``caf\\xe9.md``). Nothing else of the sync depends on it. Rename the file to index
  it.

Entries come in a deterministic order (names sorted per directory, depth first).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})
IGNORED_PATTERNS = (
    "~$*",
    "~*.tmp",
    "*.tmp",
    "*.temp",
    "*.swp",
    "*.swx",
    "*~",
    "*.part",
    "*.crdownload",
)

SYMLINK_OUTSIDE_ROOT = "ingest.symlink_outside_root"
BAD_FILE_NAME = "ingest.bad_file_name"


@dataclass(frozen=True)
class FileEntry:
    """A regular file under the root, with the ``stat`` fields the sync diff needs."""

    rel_path: str
    path: Path
    size: int
    mtime_ns: int
    inode: int
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Rejected:
    """A path the sync will record as skipped (with ``code``) without reading it."""

    rel_path: str
    path: Path
    code: str
    message: str


@dataclass(frozen=True)
class Unreadable:
    """A directory that could not be listed; files below ``rel_dir`` keep their state."""

    rel_dir: str
    message: str


WalkItem = FileEntry | Rejected | Unreadable


def is_ignored(name: str) -> bool:
    """Hidden, temp and lock files (see the module docstring)."""
    if name.startswith("."):
        return True
    lowered = name.lower()
    if lowered in IGNORED_NAMES:
        return True
    return any(fnmatch.fnmatchcase(lowered, pat) for pat in IGNORED_PATTERNS)


def printable_path(rel: str) -> str:
    """``rel`` as text every database and terminal takes: bytes of the name that were not
    UTF-8 (Python keeps them as lone surrogates) written as ``\\xNN``."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")
    return rel


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def walk(root: Path) -> Iterator[WalkItem]:
    """Yield the files under ``root`` one at a time (see the module docstring for the rules)."""
    real_root = os.path.realpath(root)
    stack: list[tuple[str, str]] = [(real_root, "")]
    while stack:
        abs_dir, rel_dir = stack.pop()
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Unreadable(
                rel_dir=printable_path(rel_dir), message=f"cannot list directory: {exc.strerror}"
            )
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            if is_ignored(entry.name):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and stat
            if stat.S_ISLNK(st.st_mode):
                target = os.path.realpath(entry.path)
                if not _inside(target, real_root):
                    yield Rejected(
                        rel_path=printable_path(rel),
                        path=Path(entry.path),
                        code=SYMLINK_OUTSIDE_ROOT,
                        message="symlink points outside the source root; not followed",
                    )
                continue
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((entry.path, rel))
            elif stat.S_ISREG(st.st_mode) and printable_path(rel) != rel:
                yield Rejected(
                    rel_path=printable_path(rel),
                    path=Path(entry.path),
                    code=BAD_FILE_NAME,
                    message="the file name is not valid UTF-8 text (the undecodable bytes are "
                    "shown as \\xNN); rename the file to index it",
                )
            elif stat.S_ISREG(st.st_mode):
                yield FileEntry(
                    rel_path=rel,
                    path=Path(entry.path),
                    size=st.st_size,
                    mtime_ns=st.st_mtime_ns,
                    inode=st.st_ino,
                    mode=stat.S_IMODE(st.st_mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                )
        # Depth first in name order: push in reverse so the smallest name pops first.
        stack.extend(reversed(subdirs))
