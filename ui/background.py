"""Work the UI process does on its own: warm-up, scheduled syncs of the known sources, and
syncs handed over by ``ingest sync``.

All start once per process and configuration, from the first page render (Streamlit has no
start-up hook; the UI opens the embedded store only from a page, so it owns it only after one).
The warm-up loads the index, the embedder and the model and checks the model's licence, so the
first question of the day does not wait for them. Scheduled syncs
(``ui.background_sync_interval_s``) re-sync every source the state database knows through the
same :class:`~ui.sync_runner.SyncRunner` as the admin page, so they never overlap a manual one.
With an embedded store, this process takes the sync requests of ``ingest sync``
(:mod:`ingest.sync.handoff`) and runs them through that runner too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ui import runtime
from ui.errors import log_error

log = logging.getLogger("enclave.ui.background")
_started: dict[runtime.ConfigKey, threading.Event] = {}
"""Configurations whose background work runs, each with the event that stops it."""
_lock = threading.Lock()


def stop_all() -> None:
    """Stop the sync-request and scheduled-sync loops of every configuration (a syncing
    round finishes first); :func:`start_once` starts them again. For embedding processes that
    outlive a configuration, e.g. a test session whose database is dropped after each test."""
    with _lock:
        for stop in _started.values():
            stop.set()
        _started.clear()


def start_once() -> None:
    """Start the background work for the current configuration (no-op after the first call)."""
    key = runtime.config_key()
    with _lock:
        if key in _started:
            return
        stop = _started[key] = threading.Event()
    settings = runtime.for_key(key).settings
    if settings.ui.warm_up:
        threading.Thread(target=_warm_up, args=(key,), name="enclave-warm-up", daemon=True).start()
    from ingest.sync.handoff import store_is_embedded

    if store_is_embedded(settings):
        threading.Thread(
            target=_serve_sync_requests,
            args=(key, stop),
            name="enclave-sync-requests",
            daemon=True,
        ).start()
    interval = settings.ui.background_sync_interval_s
    if interval:
        threading.Thread(
            target=_sync_loop,
            args=(key, interval, stop),
            name="enclave-scheduled-sync",
            daemon=True,
        ).start()


def _warm_up(key: runtime.ConfigKey) -> None:
    started = time.perf_counter()
    try:
        assistant = runtime.for_key(key).assistant()
        assistant.warm_up()  # loads the models; generative: hashes the model, checks the licence
        log.info("warm-up done in %.1f s", time.perf_counter() - started)
    except Exception as exc:  # shown to users when they ask; here only logged
        log_error(exc, "warm-up")


def sync_all_sources(key: runtime.ConfigKey) -> int:
    """One scheduled round: sync each known source in turn; returns how many ran."""
    from ingest.sync.status import collect_status, sync_holder

    resources = runtime.for_key(key)
    settings = resources.settings
    runner = resources.sync_runner()
    ran = 0
    for status in collect_status(settings):
        runner.wait()  # never overlap a sync started on the admin page
        holder = sync_holder(settings, status.name)
        if holder is not None:  # another process is syncing this source
            log.info("scheduled sync of %s skipped: %s", status.name, holder.describe())
            continue
        # The root as stored: a local path or an smb:// URL (run_sync opens the right source).
        runner.start(status.root, status.name, settings.ingest.workers, index=resources.index())
        runner.wait()
        ran += 1
    return ran


def _sync_loop(key: runtime.ConfigKey, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            sync_all_sources(key)
        except Exception as exc:
            log_error(exc, "scheduled sync")


def _serve_sync_requests(key: runtime.ConfigKey, stop: threading.Event) -> None:
    """Run ``ingest sync`` requests for the store this process owns (one at a time)."""
    from ingest.sync.handoff import RequestServer

    while not stop.is_set():
        try:
            RequestServer(
                runtime.for_key(key).settings, lambda r, p: _run_request(key, r, p), stop=stop
            ).serve_forever()
        except Exception as exc:  # a database outage: log, wait, serve again
            if not stop.is_set():
                log_error(exc, "sync requests")
                stop.wait(5)


def _run_request(key: runtime.ConfigKey, request: Any, progress: Any) -> dict[str, Any]:
    from core.errors import RemoteSyncError, SyncInProgressError

    resources = runtime.for_key(key)
    settings = resources.settings
    runner = resources.sync_runner()
    workers = request.workers or settings.ingest.workers
    while True:
        runner.wait()  # queued behind a sync started on the admin page or by the schedule
        try:
            runner.start(
                request.root,
                request.source,
                workers,
                index=resources.index(),
                options=request.run_options(),
                observer=progress,
            )
            break
        except SyncInProgressError:  # another one started in between
            time.sleep(0.5)
    state = runner.wait()
    if state is None or state.error is not None:
        raise RemoteSyncError(
            (state.error if state else None) or "the sync did not run",
            code=(state.error_code if state else None) or "ingest.error",
            exit_code=(state.exit_code if state else None) or 1,
        )
    return dict(state.result or {})
