"""One process per embedded store.

Qdrant Edge and qdrant-client's local mode both refuse a second process on the same files, but
with engine-specific, unhelpful errors (Edge: "failed to open WAL ... WouldBlock"). This lock is
taken *before* the engine opens anything, so the refusal never touches the store, and it records
who holds it so the message can say so. ``flock`` is released by the kernel when the holder
dies, including on ``kill -9``, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from core.errors import StoreLockedError


def locked_message(store: Path, holder: dict[str, Any] | None) -> str:
    who = "another Enclave process"
    if holder and holder.get("pid"):
        who += f" (pid {holder['pid']}"
        if holder.get("cmd"):
            who += f": {holder['cmd']}"
        who += ")"
        if holder.get("pid") == os.getpid():
            who = f"this same process (pid {os.getpid()}) through another open handle"
    return (
        f"the embedded index at {store} is open in {who}: usually the Enclave UI or a running "
        "`ingest sync`. The embedded store (Qdrant Edge / qdrant-client local mode) allows one "
        "process at a time. Run the sync from the admin page of the running UI (it owns the "
        "store), wait for the other sync to finish or stop that process, or configure a Qdrant "
        'server (index.backend = "qdrant", index.qdrant_url) so several processes can share '
        "the index."
    )


class StoreLock:
    """An exclusive, non-blocking ``flock`` on ``lock_path`` guarding ``store``."""

    def __init__(self, lock_path: Path, store: Path) -> None:
        self.lock_path = lock_path
        self.store = store
        self._fd: int | None = None

    def acquire(self) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            error = StoreLockedError(locked_message(self.store, holder))
            with contextlib.suppress(TypeError, ValueError):
                error.holder_pid = int((holder or {}).get("pid"))  # type: ignore[arg-type]
            raise error from None
        info = {
            "pid": os.getpid(),
            "cmd": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[
                :200
            ],
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
