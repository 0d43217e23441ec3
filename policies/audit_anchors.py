"""External anchors: the audit chain's signed checkpoints, also written outside the database.

Whoever can write the database can delete its newest records, or all of them, and move the
chain head back: what remains is still a valid, signed chain. What they cannot undo is a copy of
the chain head kept where they cannot write. After every append (``policy.audit_anchor_every``)
the record's signed anchor ``{head_id, head_hash, count, time}`` (:mod:`policies.audit_checkpoint`)
goes to every configured store; checkpoints and purges too. ``policies audit verify`` then
checks the chain against every anchor it can read: an anchor beyond the database's head means
records were removed (``audit.truncated``), an anchor whose hash differs from the record at its
position means the chain was rewritten after it was anchored (``audit.anchor_mismatch``), an
anchor with a bad signature means someone wrote into the anchor store (``audit.anchor_invalid``).

Stores (any number at once):

- ``file``: a JSON-lines file, appended with ``O_APPEND`` (one ``write`` per batch, so writers in
  several processes never interleave within a line), created 0600. Default
  ``<data_dir>/audit-anchors/anchors.jsonl``; in production a WORM mount, a directory another
  host collects, or a file made append-only (``chattr +a``).
- ``database``: a table ``enclave_audit_anchors`` in a second database whose credentials allow
  INSERT and SELECT only (docs/policies.md has the grants).
- ``syslog``: one ``enclave-audit-anchor {json}`` message per anchor to a syslog server
  (``udp://host:514``, ``tcp://host:601`` or ``unix:///dev/log``). Write-only from here:
  ``policies audit verify --anchors FILE`` reads what the collector stored.

A store that cannot be written is logged and skipped (the record is already committed); the
next anchor covers everything before it, so the window without an external copy is what
``verify`` reports as ``unanchored``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
)

from core.errors import ConfigError
from policies.audit_chain import canonical_json
from policies.audit_checkpoint import CHECKPOINT, Signed

log = logging.getLogger("enclave.audit.anchors")

MARKER = "enclave-audit-anchor"
SEND_TIMEOUT_S = 5.0
RETRY_AFTER_S = 30.0
_BATCH = 2000

_META = MetaData()
ANCHOR_TABLE = Table(
    "enclave_audit_anchors",
    _META,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("head_id", BigInteger, nullable=False, index=True),
    Column("line", Text, nullable=False),
    Column("written_at", DateTime(timezone=True), server_default=func.now()),
)


@dataclass(frozen=True)
class AnchorLine:
    """One anchor as read back: where it came from, and the signed statement (None when the
    line is not one: then ``raw`` holds it for the report)."""

    where: str
    signed: Signed | None
    raw: str = ""
    tolerated: bool = False  # a torn last line (a crash mid-write), not an alarm


class AnchorStore(Protocol):
    name: str

    def write(self, lines: Sequence[str]) -> None: ...

    def read(self) -> Iterator[AnchorLine] | None:
        """The anchors stored here, or None for a write-only store."""


def parse_line(raw: str, where: str) -> AnchorLine | None:
    """An anchor from one stored line: plain JSON, or a syslog line carrying the marker.
    None for lines that are not meant as anchors (other syslog traffic)."""
    text = raw.strip()
    if not text:
        return None
    at = text.find(MARKER)
    if at >= 0:
        text = text[at + len(MARKER) :].strip()
    elif not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return AnchorLine(where, None, raw)
    signed = Signed.from_dict(obj) if isinstance(obj, dict) else None
    return AnchorLine(where, signed, raw)


def read_lines(path: Path, label: str) -> Iterator[AnchorLine]:
    """Anchors in a file (an anchor file, or what a syslog collector stored)."""
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot read the anchor file {path}: {exc.strerror}") from exc
    with fh:
        pending: AnchorLine | None = None
        for n, raw in enumerate(fh, start=1):
            line = parse_line(raw, f"{label} line {n}")
            if line is None:
                continue
            if pending is not None:
                yield pending
            pending = line
        if pending is not None:
            torn = pending.signed is None and not pending.raw.endswith("\n")
            yield AnchorLine(pending.where, pending.signed, pending.raw, tolerated=torn)


class FileAnchors:
    """An append-only JSON-lines file (see the module docstring). Each batch is opened,
    appended with one ``write`` and closed: no descriptor outlives the call (or crosses a
    fork), and an ``chattr +a`` file accepts it."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, lines: Sequence[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read(self) -> Iterator[AnchorLine]:
        return read_lines(self.path, str(self.path))


class DatabaseAnchors:
    """A table in a second database (insert + select only; see docs/policies.md)."""

    name = "database"

    def __init__(self, url: str) -> None:
        from core.db import make_engine

        self.url = url
        self.engine: Engine = make_engine(url)
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            _META.create_all(self.engine, checkfirst=True)
            self._ready = True

    def write(self, lines: Sequence[str]) -> None:
        self._ensure()
        rows = [{"head_id": int(json.loads(x)[CHECKPOINT]["head_id"]), "line": x} for x in lines]
        with self.engine.begin() as conn:
            conn.execute(insert(ANCHOR_TABLE), rows)

    def read(self) -> Iterator[AnchorLine]:
        self._ensure()
        from core.dbcopy import safe_url

        label = f"anchor database {safe_url(self.url)}"
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(ANCHOR_TABLE.c.id, ANCHOR_TABLE.c.line)
                    .where(ANCHOR_TABLE.c.id > last)
                    .order_by(ANCHOR_TABLE.c.id)
                    .limit(_BATCH)
                ).all()
            if not rows:
                return
            for row in rows:
                line = parse_line(row.line, f"{label} row {row.id}")
                yield line if line is not None else AnchorLine(label, None, row.line)
            last = rows[-1].id


class SyslogAnchors:
    """Anchors as syslog messages (write-only; see the module docstring): facility authpriv,
    severity info, tag ``enclave``; UDP datagrams, TCP with newline framing (connect and send
    time out after :data:`SEND_TIMEOUT_S`), or a local datagram socket."""

    name = "syslog"
    PRIORITY = 10 * 8 + 6  # authpriv.info

    def __init__(self, address: str) -> None:
        self.address = address
        url = urlparse(address)
        if url.scheme == "unix" and url.path:
            self._family, self._kind = socket.AF_UNIX, socket.SOCK_DGRAM
            self._target: str | tuple[str, int] = url.path
        elif url.scheme in ("udp", "tcp") and url.hostname:
            self._family = socket.AF_INET6 if ":" in url.hostname else socket.AF_INET
            self._kind = socket.SOCK_DGRAM if url.scheme == "udp" else socket.SOCK_STREAM
            self._target = (url.hostname, url.port or (514 if url.scheme == "udp" else 601))
        else:
            raise ConfigError(
                f"policy.audit_anchor_syslog {address!r}: use udp://HOST:PORT, tcp://HOST:PORT "
                "or unix:///dev/log"
            )
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._host = socket.gethostname()
        me = weakref.ref(self)  # the fork hook must not keep the store (and its socket) alive

        def after_fork() -> None:
            store = me()
            if store is not None:
                store._reset()

        os.register_at_fork(after_in_child=after_fork)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._sock = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(self._family, self._kind)
            sock.settimeout(SEND_TIMEOUT_S)
            try:
                sock.connect(self._target)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def write(self, lines: Sequence[str]) -> None:
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
        frames = [
            f"<{self.PRIORITY}>{stamp} {self._host} enclave: {MARKER} {line}".encode()
            for line in lines
        ]
        with self._lock:
            sock = self._connect()
            try:
                if self._kind == socket.SOCK_STREAM:
                    sock.sendall(b"".join(f + b"\n" for f in frames))
                else:
                    for frame in frames:
                        sock.send(frame)
            except OSError:
                sock.close()
                self._sock = None
                raise

    def read(self) -> None:
        return None


class Anchors:
    """The configured anchor stores of one audit log. A store that failed is skipped for
    :data:`RETRY_AFTER_S` seconds, so an unreachable server does not slow every append."""

    def __init__(self, stores: Sequence[AnchorStore] = (), every: int = 1) -> None:
        self.stores = list(stores)
        self.every = max(1, every)
        self._down_until: dict[int, float] = {}

    def __bool__(self) -> bool:
        return bool(self.stores)

    def due(self, record_id: int) -> bool:
        return bool(self.stores) and record_id % self.every == 0

    def publish(self, statements: Sequence[Signed]) -> None:
        """Write signed anchors to every store; a store that fails is logged, not raised."""
        if not self.stores or not statements:
            return
        lines = [canonical_json(s.to_dict()) for s in statements]
        now = time.monotonic()
        for n, store in enumerate(self.stores):
            if self._down_until.get(n, 0.0) > now:
                continue
            try:
                store.write(lines)
            except Exception as exc:  # the record is committed; the next anchor covers it
                self._down_until[n] = now + RETRY_AFTER_S
                log.warning(
                    "audit anchor store %s could not be written (%s); retrying in %.0f s",
                    store.name,
                    exc,
                    RETRY_AFTER_S,
                )

    def readable(self) -> list[AnchorStore]:
        return [s for s in self.stores if not isinstance(s, SyslogAnchors)]
