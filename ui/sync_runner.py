"""Syncs started from the admin page: one background thread in the UI process, one at a time.

The UI process owns the embedded store, so the admin page is where a sync runs while employees
keep chatting. The runner hands ``run_sync`` the index handle the Assistant already holds (a
second handle in the same process would be refused), keeps the latest progress for every
session that looks, and the outcome of the last run. After every run it releases what the sync
used (:func:`release_sync_memory`): the parser processes' forkserver, the sync's objects, and
freed heap pages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import EnclaveError, SyncInProgressError
from core.settings import Settings

log = logging.getLogger("enclave.ui.sync")


@dataclass(frozen=True)
class SyncState:
    source: str
    root: str
    started_at: float
    running: bool = True
    phase: str = "starting"
    scanned: int = 0
    processed: int = 0
    chunks: int = 0
    current: str = ""
    finished_at: float | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # path, code, message
    error: str | None = None
    error_id: str | None = None
    # For syncs handed over from the command line: the full summary, or the error's code and
    # exit code (ingest.sync.handoff writes them into the request).
    result: dict[str, Any] | None = None
    error_code: str | None = None
    exit_code: int | None = None

    @property
    def fraction(self) -> float | None:
        if not self.scanned:
            return None
        return min(1.0, self.processed / self.scanned)


SyncFn = Callable[..., Any]


class SyncRunner:
    """At most one sync at a time, run in a daemon thread of this process."""

    def __init__(self, settings: Settings, sync_fn: SyncFn | None = None) -> None:
        self.settings = settings
        self._sync_fn = sync_fn
        self._lock = threading.Lock()
        self._state: SyncState | None = None
        self._thread: threading.Thread | None = None
        self._observer: Callable[[Any], None] | None = None

    @property
    def state(self) -> SyncState | None:
        return self._state

    @property
    def running(self) -> bool:
        state = self._state
        return state is not None and state.running

    def start(
        self,
        root: Path | str,
        source: str,
        workers: int,
        index: Any | None = None,
        *,
        options: dict[str, bool] | None = None,
        observer: Callable[[Any], None] | None = None,
    ) -> None:
        """Start a sync in the background; :class:`SyncInProgressError` if one is running.

        ``options``: ``run_sync`` flags (``retry_failed``, ``force``, ``allow_empty_root``);
        ``observer`` sees every progress event and may stop the sync by raising."""
        with self._lock:
            if self._state is not None and self._state.running:
                raise SyncInProgressError(
                    f"a sync of '{self._state.source}' is already running; wait for it to finish"
                )
            self._state = SyncState(source=source, root=str(root), started_at=time.time())
            self._observer = observer
            self._thread = threading.Thread(
                target=self._run,
                args=(root, source, workers, index, options or {}),
                name=f"enclave-sync-{source}",
                daemon=True,
            )
            self._thread.start()

    def wait(self, timeout: float | None = None) -> SyncState | None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._state

    def _update(self, **changes: Any) -> None:
        with self._lock:
            if self._state is not None:
                self._state = replace(self._state, **changes)

    def _progress(self, p: Any) -> None:
        self._update(
            phase=p.phase,
            scanned=p.scanned,
            processed=p.processed,
            chunks=p.chunks,
            current=p.path or "",
        )
        if self._observer is not None:
            self._observer(p)

    def _run(
        self,
        root: Path | str,
        source: str,
        workers: int,
        index: Any | None,
        options: dict[str, bool],
    ) -> None:
        from ui.errors import log_error

        try:
            fn: SyncFn | None = self._sync_fn
            if fn is None:
                from ingest.sync.run import run_sync

                fn = run_sync
            flags: dict[str, Any] = dict(options)  # only what was asked: tests pass fakes
            summary = fn(self.settings, root, source, workers, self._progress, index=index, **flags)
            failed = [(i.path, i.code, i.reason) for i in summary.failed]
            self._update(
                running=False,
                phase="done",
                finished_at=time.time(),
                counters=dict(summary.counters()),
                failed=failed,
                result=summary.as_dict(),
            )
            log.info("sync of %s finished: %s", source, summary.counters())
        except Exception as exc:
            error_id = log_error(exc, f"sync {source}")
            message = exc.message if isinstance(exc, EnclaveError) else "the sync failed"
            self._update(
                running=False,
                finished_at=time.time(),
                error=message,
                error_id=error_id,
                error_code=getattr(exc, "code", None) or "internal.error",
                exit_code=int(getattr(exc, "exit_code", 1)),
            )
        finally:
            release_sync_memory()


def release_sync_memory() -> None:
    """Give back what a sync used, so the UI process returns to its idle footprint: stop the
    parsers' forkserver (and reap finished children: no zombies), collect the sync's objects
    (its embedder, batches) and hand freed heap pages back to the system."""
    import gc

    from ingest.parsing.workers import stop_parser_server
    from ingest.sync.pipeline import release_free_memory

    try:
        stop_parser_server()
    except Exception as exc:  # never fail a finished sync over housekeeping
        log.warning("could not stop the parser server: %s", exc)
    gc.collect()
    release_free_memory()
