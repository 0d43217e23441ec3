"""Work the UI process does on its own: warm-up, and scheduled syncs of the known sources.

Both start once per process and configuration, from the first page render (Streamlit has no
start-up hook). The warm-up loads the index, the embedder and the model and checks the model's
licence, so the first question of the day does not wait for them. Scheduled syncs
(``ui.background_sync_interval_s``) re-sync every source the state database knows through the
same :class:`~ui.sync_runner.SyncRunner` as the admin page, so they never overlap a manual one.
"""

from __future__ import annotations

import logging
import threading
import time

from ui import runtime
from ui.errors import log_error

log = logging.getLogger("enclave.ui.background")
_started: set[runtime.ConfigKey] = set()
_lock = threading.Lock()


def start_once() -> None:
    """Start the background work for the current configuration (no-op after the first call)."""
    key = runtime.config_key()
    with _lock:
        if key in _started:
            return
        _started.add(key)
    settings = runtime.for_key(key).settings
    if settings.ui.warm_up:
        threading.Thread(target=_warm_up, args=(key,), name="enclave-warm-up", daemon=True).start()
    interval = settings.ui.background_sync_interval_s
    if interval:
        threading.Thread(
            target=_sync_loop, args=(key, interval), name="enclave-scheduled-sync", daemon=True
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
        if sync_holder(settings) is not None:  # another process is syncing this store
            log.info("scheduled sync skipped: %s", sync_holder(settings))
            break
        # The root as stored: a local path or an smb:// URL (run_sync opens the right source).
        runner.start(status.root, status.name, settings.ingest.workers, index=resources.index())
        runner.wait()
        ran += 1
    return ran


def _sync_loop(key: runtime.ConfigKey, interval: float) -> None:
    while True:
        time.sleep(interval)
        try:
            sync_all_sources(key)
        except Exception as exc:
            log_error(exc, "scheduled sync")
