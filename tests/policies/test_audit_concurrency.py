"""50 concurrent writers (threads, then processes) keep one linear chain on SQLite and on
PostgreSQL."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
from pathlib import Path

from core.db import dispose_engines
from core.settings import load_settings
from policies.identity import Principal
from policies.service import PolicyService

WRITERS = 50
PER_WRITER = 3


def _check_linear(svc: PolicyService, expected: int) -> None:
    records = svc.audit.records()
    assert [r["id"] for r in records] == list(range(1, expected + 1))
    for prev, rec in itertools.pairwise(records):
        assert rec["prev_hash"] == prev["hash"]
    res = svc.audit.verify()
    assert res.ok and res.checked == expected, res


def test_fifty_threads(db_config: Path) -> None:
    svc = PolicyService.from_settings(load_settings(db_config))
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(PER_WRITER):
                svc.audit.append("ask", principal=Principal(f"user{n}"), question=f"q{n}.{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _check_linear(svc, WRITERS * PER_WRITER)


def _process_writer(config: str, n: int, barrier: threading.Barrier, failures: mp.Queue) -> None:
    try:
        svc = PolicyService.from_settings(load_settings(config))
        barrier.wait()
        for i in range(PER_WRITER):
            svc.audit.append("ask", principal=Principal(f"proc{n}"), question=f"q{n}.{i}")
    except BaseException as exc:
        failures.put(f"{n}: {exc!r}")
        raise


def test_fifty_processes(db_config: Path) -> None:
    svc = PolicyService.from_settings(load_settings(db_config))  # migrated + keys created once
    dispose_engines()  # no pooled connection is inherited by the children
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(WRITERS)
    failures: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_writer, args=(str(db_config), n, barrier, failures))
        for n in range(WRITERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * WRITERS, failures.get_nowait()
    svc = PolicyService.from_settings(load_settings(db_config))
    _check_linear(svc, WRITERS * PER_WRITER)
    assert len({r["user_pseudonym"] for r in svc.audit.records()}) == WRITERS
