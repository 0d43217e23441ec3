"""An SMB 2/3 client for reading a share (``smbprotocol``'s low-level API, no kernel mount).

One TCP connection, one authenticated session and one tree connect serve a whole sync. Each
per-file operation is a *related compound* (CREATE + operation + CLOSE in one round trip) and
batches of them are pipelined (several compounds in flight, bounded by the server's credit
window: smbprotocol raises rather than waits when credits run out). Directory listings use
``FileIdBothDirectoryInformation``: size, times, attributes and the 64-bit file id arrive with
the listing, so the walk needs no per-file open.

Only what reading needs is requested (least privilege): ``FILE_LIST_DIRECTORY`` on
directories, ``FILE_READ_DATA`` on files, ``READ_CONTROL`` for security descriptors, plus
``FILE_READ_ATTRIBUTES``/``SYNCHRONIZE``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    BadNetworkName,
    LogonFailure,
    NoMoreFiles,
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBException,
    SMBResponseException,
)
from smbprotocol.file_info import FileAttributes, FileInformationClass, InfoType
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    ImpersonationLevel,
    Open,
    ShareAccess,
    SMB2CloseRequest,
    SMB2CreateRequest,
    SMB2CreateResponse,
    SMB2QueryDirectoryRequest,
    SMB2QueryDirectoryResponse,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
    SMB2ReadRequest,
    SMB2ReadResponse,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from core.errors import SourceUnavailableError
from policies import ntacl

J = TypeVar("J")
V = TypeVar("V")

# Rights requested per operation (least privilege).
LIST_ACCESS = 0x00000001 | 0x00000080 | 0x00100000  # LIST_DIRECTORY | READ_ATTRIBUTES | SYNC
READ_ACCESS = 0x00000001 | 0x00000080 | 0x00100000  # READ_DATA | READ_ATTRIBUTES | SYNC
SD_ACCESS = 0x00020000 | 0x00000080  # READ_CONTROL | READ_ATTRIBUTES
ATTR_ACCESS = 0x00000080  # READ_ATTRIBUTES
SHARE_ALL = (
    ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
)
SECINFO = (
    ntacl.OWNER_SECURITY_INFORMATION
    | ntacl.GROUP_SECURITY_INFORMATION
    | ntacl.DACL_SECURITY_INFORMATION
)
_DIR_INFO = FileInformationClass.FILE_ID_BOTH_DIRECTORY_INFORMATION
_CHUNK = 1 << 20

STATUS_ACCESS_DENIED = 0xC0000022
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
STATUS_OBJECT_PATH_NOT_FOUND = 0xC000003A
STATUS_NAMES = {
    STATUS_ACCESS_DENIED: "ACCESS_DENIED",
    STATUS_OBJECT_NAME_NOT_FOUND: "OBJECT_NAME_NOT_FOUND",
    STATUS_OBJECT_PATH_NOT_FOUND: "OBJECT_PATH_NOT_FOUND",
    0xC0000043: "SHARING_VIOLATION",
    0xC00000BA: "FILE_IS_A_DIRECTORY",
    0xC0000103: "NOT_A_DIRECTORY",
}


class SmbError(Exception):
    """An SMB operation on one path failed with an NTSTATUS."""

    def __init__(self, path: str, status: int, op: str) -> None:
        self.path, self.status, self.op = path, status, op
        super().__init__(f"{op} {path or '/'}: {self.status_name}")

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"NTSTATUS 0x{self.status:08X}")

    @property
    def denied(self) -> bool:
        return self.status == STATUS_ACCESS_DENIED


@dataclass(frozen=True)
class DirEntry:
    path: str  # share-relative, "/"-separated
    name: str
    is_dir: bool
    is_reparse: bool
    size: int
    mtime_ns: int  # LastWriteTime
    btime_ns: int  # CreationTime
    file_id: int


def _ns(value: Any) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return int(float(value) * 1e9)


def _status(exc: BaseException) -> int:
    return int(exc.status) if isinstance(exc, SMBResponseException) else 0


def wire_path(path: str) -> str:
    return path.strip("/").replace("/", "\\")


class SmbShare:
    """One connection + session + tree connect to ``\\\\server\\share``."""

    def __init__(
        self,
        server: str,
        share: str,
        username: str,
        password: str,
        *,
        port: int = 445,
        encrypt: bool = True,
        auth_protocol: str = "ntlm",
        timeout_s: float = 30.0,
        window: int = 32,
    ) -> None:
        self.server, self.share, self.port = server, share, port
        self._username, self._password = username, password
        self.encrypt, self.auth_protocol = encrypt, auth_protocol
        self.timeout_s = timeout_s
        self.window = window
        self._conn: Connection | None = None
        self._session: Session | None = None
        self._tree: TreeConnect | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"//{self.server}:{self.port}/{self.share}"

    def connect(self) -> SmbShare:
        try:
            self._conn = Connection(uuid.uuid4(), self.server, self.port)
            self._conn.connect(timeout=int(self.timeout_s))
        except (OSError, ValueError, SMBException) as exc:
            self.close()
            raise SourceUnavailableError(
                f"cannot reach the SMB server {self.server}:{self.port}: {exc}"
            ) from exc
        try:
            self._session = Session(
                self._conn,
                self._username,
                self._password,
                require_encryption=self.encrypt,
                auth_protocol=self.auth_protocol,
            )
            self._session.connect()
            self._tree = TreeConnect(self._session, rf"\\{self.server}\{self.share}")
            self._tree.connect()
        except (LogonFailure, SMBAuthenticationError) as exc:
            self.close()
            raise SourceUnavailableError(
                f"the SMB server {self.server} refused the service account {self._username}: {exc}",
                code="ingest.source_denied",
            ) from exc
        except BadNetworkName as exc:
            self.close()
            raise SourceUnavailableError(
                f"the SMB server {self.server} has no share named {self.share!r}",
                code="ingest.source_denied",
            ) from exc
        except SMBResponseException as exc:
            self.close()
            code = "ingest.source_denied" if _status(exc) == STATUS_ACCESS_DENIED else None
            raise SourceUnavailableError(
                f"cannot open {self.where} as {self._username}: {exc}", code=code
            ) from exc
        except (OSError, SMBException) as exc:
            self.close()
            raise SourceUnavailableError(f"cannot open {self.where}: {exc}") from exc
        return self

    def close(self) -> None:
        for obj in (self._tree, self._session, self._conn):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.disconnect()
        self._tree = self._session = self._conn = None

    def __enter__(self) -> SmbShare:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _parts(self) -> tuple[Connection, Session, TreeConnect]:
        if self._conn is None or self._session is None or self._tree is None:
            raise SourceUnavailableError(f"the connection to {self.where} is closed")
        return self._conn, self._session, self._tree

    @property
    def max_read(self) -> int:
        conn, _, _ = self._parts()
        return min(int(conn.max_read_size), _CHUNK)

    # -- messages --------------------------------------------------------------------------
    @staticmethod
    def create_request(path: str, access: int, options: int = 0) -> SMB2CreateRequest:
        req = SMB2CreateRequest()
        req["impersonation_level"] = ImpersonationLevel.Impersonation
        req["desired_access"] = access
        req["file_attributes"] = 0
        req["share_access"] = SHARE_ALL
        req["create_disposition"] = CreateDisposition.FILE_OPEN
        req["create_options"] = options
        wire = wire_path(path)
        req["buffer_path"] = wire.encode("utf-16-le") if wire else b"\x00\x00"
        return req

    @staticmethod
    def close_request() -> SMB2CloseRequest:
        req = SMB2CloseRequest()
        req["file_id"] = Open._RELATED_COMPOUND_FILE_ID
        return req

    @staticmethod
    def _read_request(offset: int, length: int) -> SMB2ReadRequest:
        req = SMB2ReadRequest()
        req["length"] = length
        req["offset"] = offset
        req["file_id"] = Open._RELATED_COMPOUND_FILE_ID
        req["padding"] = b"\x50"
        return req

    @staticmethod
    def _sd_request() -> SMB2QueryInfoRequest:
        req = SMB2QueryInfoRequest()
        req["info_type"] = InfoType.SMB2_0_INFO_SECURITY
        req["file_info_class"] = 0
        req["output_buffer_length"] = 65536
        req["additional_information"] = SECINFO
        req["file_id"] = Open._RELATED_COMPOUND_FILE_ID
        return req

    # -- transport -------------------------------------------------------------------------
    def send(self, messages: list[Any]) -> list[Any]:
        conn, session, tree = self._parts()
        try:
            return list(
                conn.send_compound(messages, session.session_id, tree.tree_connect_id, related=True)
            )
        except (SMBConnectionClosed, OSError) as exc:
            raise SourceUnavailableError(
                f"the connection to {self.where} broke: {exc}", code="ingest.source_failed"
            ) from exc

    def receive(self, requests: list[Any]) -> list[Any]:
        """Every response of a compound: its data, or the exception of that slot."""
        conn, _, _ = self._parts()
        out: list[Any] = []
        for req in requests:
            try:
                out.append(conn.receive(req, timeout=self.timeout_s)["data"].get_value())
            except SMBResponseException as exc:
                out.append(exc)
            except (SMBConnectionClosed, OSError) as exc:
                raise SourceUnavailableError(
                    f"the connection to {self.where} broke: {exc}", code="ingest.source_failed"
                ) from exc
        return out

    def run(self, messages: list[Any]) -> list[Any]:
        return self.receive(self.send(messages))

    def _credits(self) -> int:
        conn, _, _ = self._parts()
        window = conn.sequence_window
        return int(window["high"] - window["low"])

    def pipeline(
        self,
        jobs: Iterable[J],
        build: Callable[[J], list[Any]],
        finish: Callable[[J, list[Any]], V],
    ) -> Iterator[tuple[J, V]]:
        """Up to ``window`` compounds in flight; yields ``(job, finish(job, responses))`` in
        job order."""
        inflight: deque[tuple[J, list[Any]]] = deque()
        for job in jobs:
            messages = build(job)
            while inflight and (
                len(inflight) >= self.window or self._credits() < len(messages) + 1
            ):
                done, reqs = inflight.popleft()
                yield done, finish(done, self.receive(reqs))
            inflight.append((job, self.send(messages)))
        while inflight:
            done, reqs = inflight.popleft()
            yield done, finish(done, self.receive(reqs))

    # -- operations ------------------------------------------------------------------------
    def listdir(self, path: str) -> list[DirEntry]:
        """One directory's entries (``.``/``..`` left out), or :class:`SmbError`."""
        path = path.strip("/")
        query = SMB2QueryDirectoryRequest()
        query["file_information_class"] = _DIR_INFO
        query["flags"] = 0
        query["file_index"] = 0
        query["file_id"] = Open._RELATED_COMPOUND_FILE_ID
        query["output_buffer_length"] = 65536
        query["buffer"] = "*".encode("utf-16-le")
        res = self.run(
            [self.create_request(path, LIST_ACCESS, CreateOptions.FILE_DIRECTORY_FILE), query]
        )
        if isinstance(res[0], Exception):
            raise SmbError(path, _status(res[0]), "list")
        created = SMB2CreateResponse()
        created.unpack(res[0])
        file_id = created["file_id"].get_value()
        entries: list[DirEntry] = []
        data = res[1]
        try:
            while not isinstance(data, NoMoreFiles):
                if isinstance(data, Exception):
                    raise SmbError(path, _status(data), "list")
                entries += self._dir_entries(path, data)
                again = SMB2QueryDirectoryRequest()
                again["file_information_class"] = _DIR_INFO
                again["flags"] = 0
                again["file_index"] = 0
                again["file_id"] = file_id
                again["output_buffer_length"] = 65536
                again["buffer"] = "*".encode("utf-16-le")
                data = self._single(again)
        finally:
            closing = SMB2CloseRequest()
            closing["file_id"] = file_id
            self._single(closing)
        return entries

    def _single(self, message: Any) -> Any:
        conn, session, tree = self._parts()
        try:
            req = conn.send(message, session.session_id, tree.tree_connect_id)
        except (SMBConnectionClosed, OSError) as exc:
            raise SourceUnavailableError(
                f"the connection to {self.where} broke: {exc}", code="ingest.source_failed"
            ) from exc
        return self.receive([req])[0]

    @staticmethod
    def _dir_entries(parent: str, data: bytes) -> list[DirEntry]:
        response = SMB2QueryDirectoryResponse()
        response.unpack(data)
        out = []
        for info in SMB2QueryDirectoryRequest.unpack_response(
            _DIR_INFO, response["buffer"].get_value()
        ):
            name = info["file_name"].get_value().decode("utf-16-le")
            if name in (".", ".."):
                continue
            attrs = int(info["file_attributes"].get_value())
            out.append(
                DirEntry(
                    path=f"{parent}/{name}" if parent else name,
                    name=name,
                    is_dir=bool(attrs & FileAttributes.FILE_ATTRIBUTE_DIRECTORY),
                    is_reparse=bool(attrs & FileAttributes.FILE_ATTRIBUTE_REPARSE_POINT),
                    size=int(info["end_of_file"].get_value()),
                    mtime_ns=_ns(info["last_write_time"].get_value()),
                    btime_ns=_ns(info["creation_time"].get_value()),
                    file_id=int(info["file_id"].get_value()),
                )
            )
        return out

    def read_sds(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes | SmbError]]:
        """Pipelined security-descriptor reads of files: ``(path, raw SD | SmbError)``."""

        def build(path: str) -> list[Any]:
            return [
                self.create_request(path, SD_ACCESS, CreateOptions.FILE_NON_DIRECTORY_FILE),
                self._sd_request(),
                self.close_request(),
            ]

        def finish(path: str, res: list[Any]) -> bytes | SmbError:
            for slot in res[:2]:
                if isinstance(slot, Exception):
                    return SmbError(path, _status(slot), "read security descriptor")
            response = SMB2QueryInfoResponse()
            response.unpack(res[1])
            return bytes(response["buffer"].get_value())

        yield from self.pipeline(paths, build, finish)

    def read_sd(self, path: str, *, directory: bool) -> bytes:
        options = (
            CreateOptions.FILE_DIRECTORY_FILE
            if directory
            else CreateOptions.FILE_NON_DIRECTORY_FILE
        )
        res = self.run(
            [
                self.create_request(path, SD_ACCESS, options),
                self._sd_request(),
                self.close_request(),
            ]
        )
        for slot in res[:2]:
            if isinstance(slot, Exception):
                raise SmbError(path, _status(slot), "read security descriptor")
        response = SMB2QueryInfoResponse()
        response.unpack(res[1])
        return bytes(response["buffer"].get_value())

    def download(self, path: str, dest: Path) -> str:
        """Copy the file to ``dest`` (streaming); its sha256. :class:`SmbError` on failure."""
        chunk = self.max_read
        res = self.run(
            [
                self.create_request(path, READ_ACCESS, CreateOptions.FILE_NON_DIRECTORY_FILE),
                self._read_request(0, chunk),
                self.close_request(),
            ]
        )
        if isinstance(res[0], Exception):
            raise SmbError(path, _status(res[0]), "open")
        created = SMB2CreateResponse()
        created.unpack(res[0])
        size = int(created["end_of_file"].get_value())
        digest = hashlib.sha256()
        with dest.open("wb") as out:
            if size == 0:
                return digest.hexdigest()
            if isinstance(res[1], Exception):
                raise SmbError(path, _status(res[1]), "read")
            response = SMB2ReadResponse()
            response.unpack(res[1])
            first = bytes(response["buffer"].get_value())
            out.write(first)
            digest.update(first)
            if len(first) < size:
                self._download_rest(path, out, digest, len(first), size, chunk)
        return digest.hexdigest()

    def _download_rest(
        self, path: str, out: Any, digest: Any, offset: int, size: int, chunk: int
    ) -> None:
        _, _, tree = self._parts()
        handle = Open(tree, wire_path(path))
        try:
            handle.create(
                ImpersonationLevel.Impersonation,
                READ_ACCESS,
                0,
                SHARE_ALL,
                CreateDisposition.FILE_OPEN,
                CreateOptions.FILE_NON_DIRECTORY_FILE,
            )
        except SMBResponseException as exc:
            raise SmbError(path, _status(exc), "open") from exc
        try:
            while offset < size:
                try:
                    block = bytes(handle.read(offset, min(chunk, size - offset)))
                except SMBResponseException as exc:
                    raise SmbError(path, _status(exc), "read") from exc
                if not block:
                    break
                out.write(block)
                digest.update(block)
                offset += len(block)
        finally:
            with contextlib.suppress(SMBException):
                handle.close()

    def exists(self, path: str) -> bool:
        res = self.run([self.create_request(path, ATTR_ACCESS), self.close_request()])
        if not isinstance(res[0], Exception):
            return True
        status = _status(res[0])
        if status in (STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_PATH_NOT_FOUND):
            return False
        raise SmbError(path, status, "stat")
