"""The file behind a citation, for a reader of that file only.

A cited file is served only when every check retrieval makes still holds, decided when the
download is asked for (not when the answer was given):

1. **the index says this user may read it**: the cited chunk's point is fetched by id and its
   ``allowed_groups`` tested with :func:`ingest.index.common.readable_by` — the rule the search
   filter applies (so POSIX permissions, when ingest honours them, count here too);
2. **the access rules as they are now** still grant one of the user's current groups (a rule
   tightened since the last sync applies at once);
3. **the path is the indexed one**, opened component by component under the source root with
   ``O_NOFOLLOW`` (a file swapped for a symbolic link is refused, wherever the link points),
   and it must be a regular file;
4. **the bytes are the indexed bytes**: their sha256 equals the point's ``content_hash``; a
   file changed since the sync (or replaced by a hard link to another file) is refused until
   the next sync has indexed it.

Every refusal raises the same :class:`~core.errors.AccessDeniedError` message (the user learns
nothing about why); the reason goes to the log.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import AccessDeniedError
from policies.access import AccessRules
from policies.identity import Principal
from ui.runtime import Resources

log = logging.getLogger("enclave.ui.files")
NOT_AVAILABLE = "this file is not available to you"
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class CitedFile:
    source: str
    path: str  # relative to the source root, as indexed
    page: int | None
    media_type: str
    data: bytes

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def is_pdf(self) -> bool:
        return self.media_type == "application/pdf"


class _Refused(Exception):
    """Internal: why a file is refused (logged, never shown)."""


def open_cited(resources: Resources, principal: Principal, chunk_id: str) -> CitedFile:
    """The indexed file that chunk ``chunk_id`` comes from, if ``principal`` may read it now."""
    try:
        return _open(resources, principal, chunk_id)
    except _Refused as exc:
        log.warning("file refused: user %s chunk %s: %s", principal.user_id, chunk_id, exc)
        raise AccessDeniedError(NOT_AVAILABLE) from None


def readable_chunks(resources: Resources, principal: Principal, chunk_ids: list[str]) -> set[str]:
    """The chunk ids among ``chunk_ids`` whose point the index says ``principal`` may read."""
    from ingest.index.common import readable_by

    wanted = [c for c in dict.fromkeys(chunk_ids) if _is_point_id(c)]
    if not wanted or not principal.groups:
        return set()
    points = resources.index().get_points(wanted)
    return {p.id for p in points if readable_by(p.payload, principal.access_ids)}


def _open(resources: Resources, principal: Principal, chunk_id: str) -> CitedFile:
    from ingest.index.common import readable_by
    from ingest.sync.lookup import source_root

    if not _is_point_id(chunk_id):
        raise _Refused("not a point id")
    found = resources.index().get_points([chunk_id])
    if not found:
        raise _Refused("chunk not in the index")
    payload = found[0].payload
    if not readable_by(payload, principal.access_ids):
        raise _Refused("the index does not grant any of the user's groups, or denies one")
    source = str(payload.get("source") or "")
    rel_path = str(payload.get("path") or "")
    expected = str(payload.get("content_hash") or "")
    if not source or not rel_path or not expected:
        raise _Refused("the point lacks source, path or content hash")
    settings = resources.settings
    if not AccessRules.load(settings.access_rules).allows(source, rel_path, principal.access_ids):
        raise _Refused("the access rules no longer grant any of the user's groups, or deny one")
    root = source_root(settings, source)
    if root is None:
        raise _Refused(f"unknown source {source!r}")
    limit = int(settings.ingest.max_file_mb * 1024 * 1024) + 1
    data = _read_nofollow(root, rel_path, limit)
    if hashlib.sha256(data).hexdigest() != expected:
        raise _Refused("the file's bytes differ from the indexed ones")
    media_type = mimetypes.guess_type(rel_path)[0] or "application/octet-stream"
    page = payload.get("page")
    return CitedFile(
        source=source,
        path=rel_path,
        page=int(page) if isinstance(page, int) else None,
        media_type=media_type,
        data=data,
    )


def _is_point_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _read_nofollow(root: Path, rel_path: str, limit: int) -> bytes:
    """Read ``root/rel_path`` without following a symbolic link in any component below root."""
    parts = PurePosixPath(rel_path).parts
    if not parts or rel_path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise _Refused(f"unsafe path {rel_path!r}")
    try:
        dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _Refused(f"source root unavailable: {exc}") from None
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError as exc:
                raise _Refused(f"folder {part!r}: {exc}") from None
            os.close(dir_fd)
            dir_fd = nxt
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            raise _Refused(f"file: {exc}") from None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise _Refused("not a regular file")
        chunks: list[bytes] = []
        size = 0
        while True:
            block = fh.read(_READ_CHUNK)
            if not block:
                break
            size += len(block)
            if size > limit:
                raise _Refused("larger than ingest.max_file_mb")
            chunks.append(block)
    return b"".join(chunks)
