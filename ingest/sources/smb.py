""":class:`SmbSource`: a Windows or Samba share read over SMB 2/3 as a
:class:`~ingest.sources.base.Source` (``ingest sync smb://server/share/path``).

- The walk lists each directory once (depth first, names in order, the same hidden/temp-file
  rules as a local tree) and reads the security descriptor of every file in it, pipelined. The
  descriptor is read on *every* sync: an ACL edit changes neither the size nor the times the
  server reports (measured on Samba), so only the descriptor itself shows it.
- A file's identity across renames is its file id *and* creation time: Samba's file id is the
  inode number, which ext4 hands to the next new file at once.
- ``fetch`` downloads the file into the staging directory (``ingest.staging_dir``) under its
  own name (parsers look at the extension), hashing while it streams; ``release`` deletes it.
- A directory the service account may not list (``ACCESS_DENIED``) is reported and what was
  indexed below it leaves the index (fail closed: its files' permissions are unknown now). A
  file whose descriptor cannot be read is recorded as failed and not indexed. If the share
  root itself cannot be listed the sync stops (:class:`~core.errors.SourceUnavailableError`)
  rather than delete the whole source.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from core.errors import SourceArgumentError, SourceUnavailableError
from core.settings import SmbSettings
from ingest.sources.base import (
    ACL_UNREADABLE,
    UNREADABLE,
    Fetched,
    FetchError,
    Rejected,
    SourceEntry,
    Unreadable,
    WalkItem,
)
from ingest.sources.local import is_ignored
from ingest.sources.smbclient import STATUS_OBJECT_PATH_NOT_FOUND, DirEntry, SmbError, SmbShare
from policies.readers import NtFacts

REPARSE_POINT = "ingest.reparse_point"
_KEY_MASK = (1 << 63) - 1


@dataclass(frozen=True)
class SmbUrl:
    host: str
    port: int
    share: str
    path: str  # below the share, "/"-separated, no leading "/"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port != 445 else ""
        tail = f"/{self.path}" if self.path else ""
        return f"smb://{self.host}{port}/{self.share}{tail}"


def parse_smb_url(url: str) -> SmbUrl:
    """``smb://server[:port]/share[/path]``; credentials in the URL are refused."""
    parsed = urlparse(url)
    if parsed.scheme.lower() != "smb":
        raise SourceArgumentError(f"not an smb:// URL: {url!r}")
    if parsed.username is not None or parsed.password is not None or "@" in parsed.netloc:
        raise SourceArgumentError(
            "credentials never go on the command line: remove them from the URL and set "
            "smb.username with smb.password_file (or ENCLAVE_SMB__PASSWORD)"
        )
    parts = [unquote(p) for p in parsed.path.split("/") if p]
    if not parsed.hostname or not parts:
        raise SourceArgumentError(f"{url!r}: give smb://server/share[/path]")
    if any(p in (".", "..") for p in parts):
        raise SourceArgumentError(f"{url!r}: '.' and '..' are not allowed in the path")
    try:
        port = parsed.port or 445
    except ValueError as exc:
        raise SourceArgumentError(f"{url!r}: bad port") from exc
    return SmbUrl(parsed.hostname, port, parts[0], "/".join(parts[1:]))


def file_key(file_id: int, btime_ns: int) -> int:
    """One integer for (file id, creation time): the identity that survives renames."""
    digest = hashlib.blake2b(f"{file_id}:{btime_ns}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _KEY_MASK


class SmbSource:
    kind = "smb"
    has_acls = True

    def __init__(self, url: SmbUrl, share: SmbShare, staging_dir: Path) -> None:
        self.url = url
        self.root = str(url)
        self.share = share
        self._staging = staging_dir / f"smb-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._closed = False

    @classmethod
    def open(cls, url: str, settings: SmbSettings, staging_dir: Path) -> SmbSource:
        parsed = parse_smb_url(url)
        if not settings.username or settings.password is None:
            raise SourceArgumentError(
                "an SMB source needs the service account: set smb.username and smb.password_file "
                "(or ENCLAVE_SMB__USERNAME / ENCLAVE_SMB__PASSWORD)"
            )
        share = SmbShare(
            parsed.host,
            parsed.share,
            settings.username,
            settings.password.get_secret_value(),
            port=parsed.port,
            encrypt=settings.encrypt,
            auth_protocol=settings.auth_protocol,
            timeout_s=settings.timeout_s,
        ).connect()
        return cls(parsed, share, staging_dir)

    # -- walk ------------------------------------------------------------------------------
    def _rel(self, share_path: str) -> str:
        base = self.url.path
        return share_path[len(base) + 1 :] if base else share_path

    def walk(self) -> Iterator[WalkItem]:
        try:
            top = self.share.listdir(self.url.path)
        except SmbError as exc:
            code = "ingest.source_denied" if exc.denied else "ingest.source_failed"
            raise SourceUnavailableError(
                f"cannot list {self.url} as the service account: {exc.status_name}", code=code
            ) from exc
        stack: list[tuple[str, list[DirEntry] | None]] = [(self.url.path, top)]
        while stack:
            directory, listed = stack.pop()
            if listed is None:
                try:
                    listed = self.share.listdir(directory)
                except SmbError as exc:
                    if exc.status == STATUS_OBJECT_PATH_NOT_FOUND:
                        continue  # removed while we walked: its files count as gone
                    yield Unreadable(
                        self._rel(directory),
                        f"cannot list this folder ({exc.status_name})"
                        + (
                            ": the service account has no access; what was indexed below it "
                            "is removed from the index"
                            if exc.denied
                            else ""
                        ),
                        keep=not exc.denied,
                    )
                    continue
            files: list[DirEntry] = []
            subdirs: list[str] = []
            for e in sorted(listed, key=lambda x: x.name):
                if is_ignored(e.name):
                    continue
                if e.is_reparse:
                    yield Rejected(
                        self._rel(e.path),
                        REPARSE_POINT,
                        "a link or junction on the share: not followed",
                    )
                elif e.is_dir:
                    subdirs.append(e.path)
                else:
                    files.append(e)
            yield from self._with_permissions(files)
            stack.extend((d, None) for d in reversed(subdirs))

    def _with_permissions(self, files: list[DirEntry]) -> Iterator[SourceEntry]:
        by_path = {f.path: f for f in files}
        for path, sd in self.share.read_sds(by_path):
            e = by_path[path]
            facts, error = None, None
            if isinstance(sd, SmbError):
                error = (
                    ACL_UNREADABLE,
                    f"the service account cannot read this file's permissions ({sd.status_name}): "
                    "not indexed",
                )
            else:
                facts = NtFacts(sd)
            yield SourceEntry(
                rel_path=self._rel(path),
                size=e.size,
                mtime_ns=e.mtime_ns,
                file_key=file_key(e.file_id, e.btime_ns),
                facts=facts,
                facts_error=error,
            )

    # -- content ---------------------------------------------------------------------------
    def _share_path(self, rel_path: str) -> str:
        return f"{self.url.path}/{rel_path}" if self.url.path else rel_path

    def fetch(self, entry: SourceEntry) -> Fetched:
        folder = self._staging / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / entry.rel_path.rsplit("/", 1)[-1]
        try:
            sha = self.share.download(self._share_path(entry.rel_path), dest)
        except SmbError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise FetchError(UNREADABLE, f"cannot read the file ({exc.status_name})") from exc
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Fetched(dest, sha, lambda: shutil.rmtree(folder, ignore_errors=True))

    def exists(self, rel_path: str) -> bool:
        try:
            return self.share.exists(self._share_path(rel_path))
        except SmbError:
            return True  # cannot tell: do not treat the donor as renamed away

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.share.close()
        shutil.rmtree(self._staging, ignore_errors=True)
