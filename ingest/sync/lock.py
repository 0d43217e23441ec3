"""One sync per source and store, enforced in the database (works for Edge and for a Qdrant
server).

The lock is a row in ``ingest_sync_lock`` keyed by the store (index backend + location +
collection) *and* the source: syncs of different shares into one Qdrant server run in parallel
(they touch disjoint documents: every ``doc_id`` includes its source's name), two syncs of the
same source refuse. The holder refreshes ``heartbeat_at`` every few seconds from a background
thread. Another sync of the source refuses with :class:`~core.errors.SyncInProgressError` while
the holder is alive; it takes the lock over (compare-and-swap on the holder's token) when the
holder's heartbeat is older than ``ttl_s`` or the holder runs on this host and its pid is gone
(a ``kill -9``). With the embedded Edge store the store's own file lock still refuses any second
process (one process owns that store); this lock comes first so the message can say which sync
holds the source.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from core.db import session_scope
from core.errors import SyncInProgressError
from core.settings import Settings
from ingest.sync.state import SyncLockRow

HEARTBEAT_S = 5.0
TTL_S = 60.0


def store_identity(settings: Settings) -> str:
    """A readable name of the index store a sync writes to."""
    cfg = settings.index
    if cfg.backend == "edge":
        return f"edge:{(settings.index_dir / cfg.collection).resolve()}"
    if cfg.qdrant_url:
        return f"qdrant:{cfg.qdrant_url.rstrip('/')}/{cfg.collection}"
    path = cfg.qdrant_path.resolve() if cfg.qdrant_path else None
    return f"qdrant-local:{path}/{cfg.collection}"


def store_key(identity: str) -> str:
    """Key of a store (the index metadata and the runs are recorded per store)."""
    return hashlib.sha256(identity.encode()).hexdigest()[:64]


def lock_key(identity: str, source: str) -> str:
    """Key of the sync lock of one source in one store."""
    return hashlib.sha256(f"{identity}\x00{source}".encode()).hexdigest()[:64]


@dataclass(frozen=True)
class Holder:
    source: str
    pid: int
    host: str
    run_id: int | None
    acquired_at: float
    heartbeat_at: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.acquired_at))
        run = f", run {self.run_id}" if self.run_id else ""
        return f"source '{self.source}', pid {self.pid} on {self.host}{run}, since {since}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(row: SyncLockRow, now: float, ttl_s: float) -> bool:
    if now - row.heartbeat_at > ttl_s:
        return True
    return row.host == socket.gethostname() and not _pid_alive(row.pid)


class SyncLock:
    """Acquire with :meth:`acquire`; :attr:`lost` turns true if another process took it over."""

    def __init__(
        self,
        engine: Engine,
        identity: str,
        source: str,
        *,
        ttl_s: float = TTL_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.key = lock_key(identity, source)
        self.store_key = store_key(identity)
        self.source = source
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        self.token = uuid.uuid4().hex
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> Holder | None:
        """Take the lock; return the stale holder it replaced (``None`` if it was free).

        Raises :class:`SyncInProgressError` when a live sync holds the store."""
        now = time.time()
        mine = dict(
            store=self.identity,
            token=self.token,
            run_id=None,
            source=self.source,
            pid=os.getpid(),
            host=socket.gethostname(),
            acquired_at=now,
            heartbeat_at=now,
        )
        try:
            with session_scope(self.engine) as s:
                s.add(SyncLockRow(store_key=self.key, **mine))
            self._start_heartbeat()
            return None
        except IntegrityError:
            pass
        with session_scope(self.engine) as s:
            row = s.scalar(select(SyncLockRow).where(SyncLockRow.store_key == self.key))
            if row is None:  # released between our insert and this read: try once more
                s.add(SyncLockRow(store_key=self.key, **mine))
                s.flush()
                previous = None
            else:
                previous = _holder(row)
                if not _is_stale(row, now, self.ttl_s):
                    raise SyncInProgressError(
                        f"another sync of source '{self.source}' is running "
                        f"({previous.describe()}); it must finish first. Run `ingest status` "
                        "to follow it, or retry later."
                    )
                taken = s.execute(
                    update(SyncLockRow)
                    .where(SyncLockRow.store_key == self.key, SyncLockRow.token == row.token)
                    .values(**mine)
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    raise SyncInProgressError(
                        f"another sync took over the stale lock of source '{self.source}' at "
                        "the same moment; retry later"
                    )
        self._start_heartbeat()
        return previous

    def set_run(self, run_id: int) -> None:
        with session_scope(self.engine) as s:
            s.execute(
                update(SyncLockRow)
                .where(SyncLockRow.store_key == self.key, SyncLockRow.token == self.token)
                .values(run_id=run_id)
            )

    def _start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="sync-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                with session_scope(self.engine) as s:
                    res = s.execute(
                        update(SyncLockRow)
                        .where(SyncLockRow.store_key == self.key, SyncLockRow.token == self.token)
                        .values(heartbeat_at=time.time())
                    )
                    if res.rowcount == 0:  # type: ignore[attr-defined]
                        self.lost = True
                        return
            except Exception:  # a transient DB error: the next beat retries
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with session_scope(self.engine) as s:
            s.execute(
                delete(SyncLockRow).where(
                    SyncLockRow.store_key == self.key, SyncLockRow.token == self.token
                )
            )


def current_holder(engine: Engine, identity: str, source: str) -> Holder | None:
    """Who holds the sync lock of ``source`` in the store right now (stale counts as nobody)."""
    with session_scope(engine) as s:
        row = s.scalar(
            select(SyncLockRow).where(SyncLockRow.store_key == lock_key(identity, source))
        )
        if row is None or _is_stale(row, time.time(), TTL_S):
            return None
        return _holder(row)


def current_holders(engine: Engine, identity: str) -> list[Holder]:
    """Every live sync of the store (one per source), oldest first."""
    now = time.time()
    with session_scope(engine) as s:
        rows = s.scalars(
            select(SyncLockRow)
            .where(SyncLockRow.store == identity)
            .order_by(SyncLockRow.acquired_at)
        )
        return [_holder(r) for r in rows if not _is_stale(r, now, TTL_S)]


def _holder(row: SyncLockRow) -> Holder:
    return Holder(row.source, row.pid, row.host, row.run_id, row.acquired_at, row.heartbeat_at)
