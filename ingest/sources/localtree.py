""":class:`LocalSource`: a local, NFS- or CIFS-mounted tree as a Source (see ``base``).

The walk rules are :mod:`ingest.sources.local`'s. The parser reads the files where they are
(``fetch`` only hashes them). With ``ingest.posix_permissions`` on, each entry carries the file's
POSIX permissions (mode bits and ``system.posix_acl_access``) read during the walk, so an ACL
edit is seen by every sync even when it leaves the mtime alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ingest.sources import local
from ingest.sources.base import UNREADABLE, Fetched, FetchError, Rejected, SourceEntry, Unreadable
from ingest.sources.base import WalkItem as SourceItem
from policies.posixacl import read_acl
from policies.readers import PosixFacts

_READ_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            h.update(block)
    return h.hexdigest()


class LocalSource:
    kind = "local"
    has_acls = False

    def __init__(self, root: Path, *, posix: bool = False) -> None:
        self.path = Path(root)
        self.root = str(self.path)
        self.posix = posix

    def walk(self) -> Iterator[SourceItem]:
        for item in local.walk(self.path):
            if isinstance(item, local.Unreadable):
                yield Unreadable(item.rel_dir, item.message, keep=True)
            elif isinstance(item, local.Rejected):
                yield Rejected(item.rel_path, item.code, item.message)
            else:
                yield self._entry(item)

    def _entry(self, item: local.FileEntry) -> SourceEntry:
        facts = error = None
        if self.posix:
            try:
                acl = read_acl(item.path, mode=item.mode, uid=item.uid, gid=item.gid)
                facts = PosixFacts(acl)
            except (OSError, ValueError) as exc:
                error = ("ingest.acl_unreadable", f"cannot read the POSIX ACL: {exc}")
        return SourceEntry(
            rel_path=item.rel_path,
            size=item.size,
            mtime_ns=item.mtime_ns,
            file_key=item.inode,
            mode=item.mode,
            uid=item.uid,
            gid=item.gid,
            facts=facts,
            facts_error=error,
        )

    def fetch(self, entry: SourceEntry) -> Fetched:
        path = self.path / entry.rel_path
        try:
            return Fetched(path, file_sha256(path))
        except OSError as exc:
            raise FetchError(UNREADABLE, f"cannot read the file: {exc.strerror or exc}") from exc

    def exists(self, rel_path: str) -> bool:
        return os.path.lexists(self.path / rel_path)

    def close(self) -> None:
        """Nothing to release: the files are read where they are."""
