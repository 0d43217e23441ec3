"""``ingest sync`` while another process owns the embedded store: hand the sync to that process.

Qdrant Edge (and qdrant-client's local mode) allow one process per store; in the embedded
default that is the UI. The admin's command still works:

1. The owner registers in ``ingest_store_owners`` (store, pid, host) and refreshes a heartbeat
   every :data:`HEARTBEAT_S` while it takes requests (:class:`RequestServer`, run by the UI's
   background worker).
2. ``ingest sync`` opens the store, is refused (``index.locked``) by a process that is that
   live owner, and writes a request row (``ingest_sync_requests``: source, root, options) instead
   of failing (:func:`submit`).
3. The owner claims the row (compare-and-swap ``pending`` -> ``running``), runs the sync through
   its own index handle and writes the progress, a heartbeat and at the end the summary, or the
   error's code, message and exit code, into the row.
4. The CLI follows the row (:func:`follow`): the same progress bar, the same ``--json`` summary,
   the same exit code (the owner's error is re-raised as :class:`~core.errors.RemoteSyncError`
   with its code). Ctrl-C *detaches* (the sync goes on in the owner; ``ingest status`` shows
   it), or with ``--cancel-on-interrupt`` asks the owner to stop it (``ingest.cancelled``, 130;
   the next sync resumes like after any interrupted sync).

An owner that stops (its heartbeat older than :data:`OWNER_TTL_S`) fails the requests it held
with ``ingest.handoff_lost``; nothing is half-applied, because the sync itself is crash-safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from core.db import session_scope
from core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EnclaveError,
    HandoffLostError,
    RemoteSyncError,
    SyncCancelledError,
)
from core.settings import Settings
from ingest.sync.lock import store_identity, store_key
from ingest.sync.state import StoreOwnerRow, SyncRequestRow, open_state, utcnow

HEARTBEAT_S = 2.0
OWNER_TTL_S = 20.0
PROGRESS_EVERY_S = 0.5
PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
)
FINAL = (COMPLETED, FAILED, CANCELLED)


def store_is_embedded(settings: Settings) -> bool:
    """Whether one process owns the configured store (Edge, or qdrant-client's local mode)."""
    cfg = settings.index
    return cfg.backend == "edge" or (cfg.backend == "qdrant" and not cfg.qdrant_url)


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    heartbeat_at: float


@dataclass(frozen=True)
class SyncRequest:
    id: int
    source: str
    root: str
    options: dict[str, Any]

    @property
    def workers(self) -> int | None:
        value = self.options.get("workers")
        return int(value) if value is not None else None

    def run_options(self) -> dict[str, bool]:
        """Keyword arguments of :func:`ingest.sync.run.run_sync`."""
        return {
            k: bool(self.options.get(k, False))
            for k in ("retry_failed", "force", "allow_empty_root")
        }


def live_owner(engine: Engine, identity: str) -> Owner | None:
    """The process that owns the store and takes sync requests, if it is alive."""
    with session_scope(engine) as s:
        row = s.get(StoreOwnerRow, store_key(identity))
        if row is None or time.time() - row.heartbeat_at > OWNER_TTL_S:
            return None
        return Owner(row.pid, row.host, row.heartbeat_at)


# -- the requesting side (the CLI) -------------------------------------------------------------
def submit(engine: Engine, identity: str, source: str, root: str, options: dict[str, Any]) -> int:
    """Write a pending request for the store's owner; returns its id."""
    with session_scope(engine) as s:
        row = SyncRequestRow(
            store_key=store_key(identity),
            source=source,
            root=root,
            options=json.dumps(options),
            status=PENDING,
            requested_at=utcnow(),
            requester_pid=os.getpid(),
            requester_host=socket.gethostname(),
            cancel_requested=False,
        )
        s.add(row)
        s.flush()
        return int(row.id)


def request_cancel(engine: Engine, request_id: int) -> None:
    """Ask the owner to stop the sync (a pending request is cancelled right here)."""
    with session_scope(engine) as s:
        s.execute(
            update(SyncRequestRow)
            .where(SyncRequestRow.id == request_id)
            .values(cancel_requested=True)
        )
        s.execute(
            update(SyncRequestRow)
            .where(SyncRequestRow.id == request_id, SyncRequestRow.status == PENDING)
            .values(
                status=CANCELLED,
                finished_at=utcnow(),
                error_code=SyncCancelledError.code,
                error_message="cancelled before the owner started it",
                exit_code=EXIT_INTERRUPTED,
            )
        )


def follow(
    engine: Engine,
    identity: str,
    request_id: int,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    *,
    poll_s: float = 0.25,
) -> dict[str, Any]:
    """Wait for the request's outcome: the summary dict, or the owner's error re-raised.

    ``on_progress`` receives the owner's latest progress (``SyncProgress`` fields) as it
    changes. Raises :class:`HandoffLostError` when the owner stops before the end."""
    seen: str | None = None
    while True:
        with session_scope(engine) as s:
            row = s.get(SyncRequestRow, request_id)
            if row is None:
                raise HandoffLostError(f"sync request {request_id} disappeared")
            status, progress = row.status, row.progress
            result, code, message = row.result, row.error_code, row.error_message
            exit_code = row.exit_code
        if progress and progress != seen and on_progress is not None:
            seen = progress  # also the last one, written just before the outcome
            on_progress(json.loads(progress))
        if status == COMPLETED:
            return dict(json.loads(result or "{}"))
        if status in (FAILED, CANCELLED):
            raise RemoteSyncError(
                message or "the sync failed in the owning process",
                code=code or EnclaveError.code,
                exit_code=exit_code if exit_code is not None else EXIT_FAILED,
            )
        if live_owner(engine, identity) is None:
            _abandon(engine, request_id)
        time.sleep(poll_s)


def _abandon(engine: Engine, request_id: int) -> None:
    """The owner is gone: fail the request (unless it just finished) so nobody waits forever."""
    message = (
        "the process that owned the index stopped before the handed-off sync ended; run "
        "`ingest sync` again (it resumes where the sync stopped)"
    )
    with session_scope(engine) as s:
        s.execute(
            update(SyncRequestRow)
            .where(SyncRequestRow.id == request_id, SyncRequestRow.status.in_([PENDING, RUNNING]))
            .values(
                status=FAILED,
                finished_at=utcnow(),
                error_code=HandoffLostError.code,
                error_message=message,
                exit_code=HandoffLostError.exit_code,
            )
        )


# -- the owning side (the UI's background worker) ----------------------------------------------
RunFn = Callable[[SyncRequest, Callable[[Any], None]], dict[str, Any]]
"""``run(request, progress) -> summary dict``: runs the sync in the owner, calling
``progress(SyncProgress)`` as it goes; raises on failure (an EnclaveError keeps its code)."""


class RequestServer:
    """Registers this process as the store's owner and runs the sync requests it receives."""

    def __init__(
        self,
        settings: Settings,
        run: RunFn,
        *,
        poll_s: float = 1.0,
        stop: threading.Event | None = None,
    ) -> None:
        """``stop``: an event that ends :meth:`serve_forever` when set (default: its own,
        set by :meth:`stop`)."""
        self.engine = open_state(settings.db_url)
        self.identity = store_identity(settings)
        self.key = store_key(self.identity)
        self.run = run
        self.poll_s = poll_s
        self.started_at = time.time()
        self._current: int | None = None
        self._stop = stop if stop is not None else threading.Event()

    def serve_forever(self) -> None:
        """Heartbeat and request loop; returns when :meth:`stop` is called."""
        threading.Thread(target=self._beat_loop, name="enclave-owner-beat", daemon=True).start()
        self._fail_orphans()
        while not self._stop.is_set():
            if not self.serve_once():
                self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()

    def serve_once(self) -> bool:
        """Run the oldest pending request; ``False`` when there was none."""
        self.beat()
        request = self._claim()
        if request is None:
            return False
        self._current = request.id
        try:
            self._execute(request)
        finally:
            self._current = None
        return True

    # -- heartbeat -----------------------------------------------------------------------------
    def beat(self) -> None:
        now = time.time()
        mine = dict(
            store=self.identity,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=self.started_at,
            heartbeat_at=now,
        )
        with session_scope(self.engine) as s:
            row = s.get(StoreOwnerRow, self.key)
            if row is None:
                s.add(StoreOwnerRow(store_key=self.key, **mine))
            else:
                for name, value in mine.items():
                    setattr(row, name, value)
            if self._current is not None:
                s.execute(
                    update(SyncRequestRow)
                    .where(SyncRequestRow.id == self._current)
                    .values(heartbeat_at=now)
                )

    def _beat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a DB hiccup: the next beat retries
                self.beat()

    def _fail_orphans(self) -> None:
        """Requests a previous owner process claimed and never finished."""
        with session_scope(self.engine) as s:
            s.execute(
                update(SyncRequestRow)
                .where(
                    SyncRequestRow.store_key == self.key,
                    SyncRequestRow.status == RUNNING,
                    SyncRequestRow.owner_pid != os.getpid(),
                )
                .values(
                    status=FAILED,
                    finished_at=utcnow(),
                    error_code=HandoffLostError.code,
                    error_message="the owning process stopped during this sync",
                    exit_code=HandoffLostError.exit_code,
                )
            )

    # -- requests ------------------------------------------------------------------------------
    def _claim(self) -> SyncRequest | None:
        with session_scope(self.engine) as s:
            row = s.scalar(
                select(SyncRequestRow)
                .where(SyncRequestRow.store_key == self.key, SyncRequestRow.status == PENDING)
                .order_by(SyncRequestRow.id)
                .limit(1)
            )
            if row is None:
                return None
            request = SyncRequest(row.id, row.source, row.root, json.loads(row.options or "{}"))
        with session_scope(self.engine) as s:
            taken = s.execute(
                update(SyncRequestRow)
                .where(SyncRequestRow.id == request.id, SyncRequestRow.status == PENDING)
                .values(
                    status=RUNNING,
                    owner_pid=os.getpid(),
                    claimed_at=utcnow(),
                    heartbeat_at=time.time(),
                    progress=json.dumps(_progress_dict("queued")),
                )
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None  # cancelled (or taken) meanwhile
        return request

    def _execute(self, request: SyncRequest) -> None:
        last = 0.0

        def progress(event: Any) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < PROGRESS_EVERY_S and getattr(event, "phase", "") != "done":
                return
            last = now
            data = {k: getattr(event, k) for k in _progress_dict("")}
            with session_scope(self.engine) as s:
                s.execute(
                    update(SyncRequestRow)
                    .where(SyncRequestRow.id == request.id)
                    .values(progress=json.dumps(data), heartbeat_at=time.time())
                )
                cancel = s.scalar(
                    select(SyncRequestRow.cancel_requested).where(SyncRequestRow.id == request.id)
                )
            if cancel:
                raise SyncCancelledError(
                    "the sync was cancelled from the command line that requested it; the next "
                    "sync resumes where it stopped"
                )

        try:
            summary = self.run(request, progress)
        except Exception as exc:
            code = getattr(exc, "code", None) or "internal.error"
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            exit_code = int(getattr(exc, "exit_code", EXIT_FAILED))
            status = CANCELLED if code == SyncCancelledError.code else FAILED
            self._finish(request.id, status, None, code, message, exit_code)
            return
        self._finish(request.id, COMPLETED, summary, None, None, 0)

    def _finish(
        self,
        request_id: int,
        status: str,
        summary: dict[str, Any] | None,
        code: str | None,
        message: str | None,
        exit_code: int,
    ) -> None:
        for attempt in range(3):  # the outcome must land: the CLI waits for it
            try:
                with session_scope(self.engine) as s:
                    s.execute(
                        update(SyncRequestRow)
                        .where(SyncRequestRow.id == request_id)
                        .values(
                            status=status,
                            finished_at=utcnow(),
                            result=json.dumps(summary) if summary is not None else None,
                            error_code=code,
                            error_message=message[:4000] if message else None,
                            exit_code=exit_code,
                        )
                    )
                return
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(1.0)


def _progress_dict(phase: str) -> dict[str, Any]:
    return {"phase": phase, "scanned": 0, "processed": 0, "chunks": 0, "in_flight": 0, "path": None}
