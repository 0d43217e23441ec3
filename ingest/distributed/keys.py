"""Redis key names shared by the coordinator and the workers.

Everything a sync uses is namespaced by its *channel* (the key of its sync lock: one store and
one source), so syncs of different sources share the broker and the workers without seeing each
other's runs, leases or results.
"""

from __future__ import annotations

PREFIX = "enclave:ingest"
WORKERS = f"{PREFIX}:workers"
"""Sorted set: ``host:pid`` of every ready worker process, scored by when its entry expires."""

RESULT_TTL_S = 86_400
"""Results and counters of a coordinator that never comes back expire after a day."""


def active_run(channel: str) -> str:
    """The run token of the live coordinator; tasks of any other run skip themselves."""
    return f"{PREFIX}:{channel}:run"


def results(channel: str) -> str:
    """Stream: one entry per processed file (or a worker's fatal error)."""
    return f"{PREFIX}:{channel}:results"


def lease(channel: str, batch_id: str) -> str:
    """Held (with a TTL the worker refreshes) while a worker runs the batch."""
    return f"{PREFIX}:{channel}:lease:{batch_id}"


def starts(channel: str, batch_id: str) -> str:
    """How many times a worker started the batch without finishing it (poison guard)."""
    return f"{PREFIX}:{channel}:starts:{batch_id}"
