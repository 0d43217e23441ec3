"""Fault points for the crash-safety tests (inactive unless ``ENCLAVE_FAULTS`` is set).

``ENCLAVE_FAULTS`` holds ``;``-separated rules ``point:arg=action``:

- ``commit:N=kill``: the sync process SIGKILLs itself the N-th time it reaches the fault point
  ``commit`` (other points: ``intent`` after an intent row is committed, ``upsert`` after index
  writes and before the flush/commit, ``delete`` between the two steps of a deletion).
- ``commit:*=sleep:0.2``: sleep 0.2 s at every pass (stretches a run for random-time kills);
- ``parse:NAME=crash`` / ``parse:NAME=hang``: a parse worker dies (SIGKILL) or hangs on files
  whose name is ``NAME``; ``parse:*=sleep:0.5``: every parse takes 0.5 s longer (stretches a
  distributed sync so a test can kill a worker in the middle of a batch).

The tests run a real ``ingest sync`` child process with these set and then check that the
next sync repairs everything. Reading the variable costs one dict lookup per point.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

ENV = "ENCLAVE_FAULTS"
_hits: Counter[str] = Counter()


def _rules() -> dict[str, str]:
    raw = os.environ.get(ENV, "")
    rules: dict[str, str] = {}
    for part in raw.split(";"):
        if "=" in part:
            key, action = part.split("=", 1)
            rules[key.strip()] = action.strip()
    return rules


def reach(point: str) -> None:
    """Count a pass through ``point``; SIGKILL this process on the configured pass."""
    if ENV not in os.environ:
        return
    _hits[point] += 1
    for key, action in _rules().items():
        name, _, arg = key.partition(":")
        if name != point:
            continue
        if action == "kill" and arg.isdigit() and int(arg) == _hits[point]:
            os.kill(os.getpid(), signal.SIGKILL)
        if action.startswith("sleep:") and arg == "*":
            time.sleep(float(action.split(":", 1)[1]))


def on_parse(file_name: str) -> None:
    """In a parse worker: crash or hang on the configured file name."""
    if ENV not in os.environ:
        return
    rules = _rules()
    every = rules.get("parse:*", "")
    if every.startswith("sleep:"):
        time.sleep(float(every.split(":", 1)[1]))
    action = rules.get(f"parse:{file_name}")
    if action == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "hang":
        while True:
            time.sleep(3600)
