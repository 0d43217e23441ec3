"""Distributed ingestion end to end: real ``redis-server``, real ``ingest worker`` processes
(Celery prefork, the packaged MiniLM), the coordinator as a real ``ingest sync`` process.

Every scenario ends by comparing the index with a clean in-process sync of the same tree (point
ids, payload hashes without ``ingested_at``, vectors): the distributed path must be a drop-in,
also after ``kill -9`` of a worker in the middle of a batch, of the broker, or of the
coordinator.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import session_scope
from core.settings import load_settings
from ingest.sync.state import FileRow, open_state
from tests.distributed.conftest import (
    SLOW_PARSE,
    RedisServer,
    clean_index,
    finish_sync,
    make_tree,
    start_sync,
    wait_for_lease,
    write_dist_config,
)
from tests.ingest.conftest import assert_same_index, dump_index

pytestmark = pytest.mark.slow


def _rows(config: Path) -> dict[str, int]:
    engine = open_state(load_settings(config).db_url)
    with session_scope(engine) as s:
        rows = s.execute(select(FileRow.status, func.count()).group_by(FileRow.status))
        return {str(status): int(n) for status, n in rows}


def test_two_workers_sync_exactly_like_in_process(
    broker: RedisServer, start_workers: Any, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "share", extra_docs=6)
    config = write_dist_config(tmp_path / "cfg", tmp_path / "dist", broker.url)
    start_workers(config, 2)
    summary = finish_sync(start_sync(config, root))
    assert summary["added"] == 12 and summary["failed_count"] == 0
    assert summary["embedded"] == summary["chunks"] > 0  # embedded by the workers
    dist = summary["distributed"]
    assert dist["batches"] >= 6 and dist["resends"] == 0  # at most 2 files per batch
    assert sum(dist["files_by_worker"].values()) == 12
    assert_same_index(dump_index(load_settings(config)), clean_index(tmp_path, root))
    again = finish_sync(start_sync(config, root))  # nothing changed: no batch at all
    assert again["unchanged"] == 12 and "distributed" not in again


def test_kill9_of_a_worker_mid_batch_then_the_sync_ends_like_a_clean_one(
    broker: RedisServer, start_workers: Any, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "share")
    config = write_dist_config(tmp_path / "cfg", tmp_path / "dist", broker.url)
    first, second = start_workers(config, 2, env=SLOW_PARSE)
    sync = start_sync(config, root)
    holder = wait_for_lease(broker)  # a Celery process is inside a batch now
    time.sleep(0.3)
    victim = next(w for w in (first, second) if holder["pid"] in w.child_pids())
    survivor = second if victim is first else first
    victim.kill9_all()  # main process, prefork child and its parser: the machine is gone
    summary = finish_sync(sync)
    dist = summary["distributed"]
    assert dist["resends"] >= 1, dist
    assert summary["failed_count"] == 0 and summary["added"] == 20
    assert survivor.proc.poll() is None
    assert _rows(config) == {"ok": 20}
    assert_same_index(dump_index(load_settings(config)), clean_index(tmp_path, root))


def test_kill9_of_a_prefork_child_is_requeued(
    broker: RedisServer, start_workers: Any, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "share", extra_docs=8)
    config = write_dist_config(tmp_path / "cfg", tmp_path / "dist", broker.url)
    (worker,) = start_workers(config, 1, env=SLOW_PARSE)
    sync = start_sync(config, root)
    holder = wait_for_lease(broker)
    time.sleep(0.3)
    os.kill(int(holder["pid"]), signal.SIGKILL)  # the Celery process running the batch
    summary = finish_sync(sync)
    assert summary["failed_count"] == 0 and summary["added"] == 14
    assert worker.proc.poll() is None  # Celery replaced its child
    assert_same_index(dump_index(load_settings(config)), clean_index(tmp_path, root))


def test_kill9_of_the_broker_mid_sync(
    broker: RedisServer, start_workers: Any, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "share")
    config = write_dist_config(tmp_path / "cfg", tmp_path / "dist", broker.url)
    start_workers(config, 2, env=SLOW_PARSE)
    sync = start_sync(config, root)
    wait_for_lease(broker)
    time.sleep(1.0)
    broker.kill9()  # no persistence: it comes back empty (queue, leases, results gone)
    time.sleep(3.0)
    broker.start()
    summary = finish_sync(sync)
    dist = summary["distributed"]
    assert dist["broker_errors"] >= 1 and dist["broker_state_lost"] == 1, dist
    assert summary["failed_count"] == 0 and summary["added"] == 20
    assert_same_index(dump_index(load_settings(config)), clean_index(tmp_path, root))


def test_kill9_of_the_coordinator_then_a_rerun(
    broker: RedisServer, start_workers: Any, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "share")
    config = write_dist_config(tmp_path / "cfg", tmp_path / "dist", broker.url)
    start_workers(config, 2, env=SLOW_PARSE)
    sync = start_sync(config, root)
    engine = open_state(load_settings(config).db_url)
    deadline = time.monotonic() + 300
    while True:  # kill it once it committed some documents, while batches are in flight
        with session_scope(engine) as s:
            done = s.scalar(select(func.count()).where(FileRow.status == "ok"))
        if done:
            break
        assert sync.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    sync.send_signal(signal.SIGKILL)
    sync.wait()
    assert _rows(config).get("ok", 0) < 20
    summary = finish_sync(start_sync(config, root))
    assert summary["failed_count"] == 0
    assert _rows(config) == {"ok": 20}
    assert_same_index(dump_index(load_settings(config)), clean_index(tmp_path, root))


def test_a_worker_with_another_embedding_config_is_refused(
    broker: RedisServer, start_workers: Any, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "share", extra_docs=0)
    coordinator = write_dist_config(tmp_path / "cfg", tmp_path / "dist", broker.url)
    other = write_dist_config(
        tmp_path / "worker-cfg",
        tmp_path / "w",
        broker.url,
        extra="[embedding]\nmax_seq_length = 128\n",
    )
    start_workers(other, 1)
    sync = start_sync(coordinator, root)
    _, err = sync.communicate(timeout=600)
    assert sync.returncode == 2, err
    assert "[ingest.worker_mismatch]" in err and "max_seq_length 128" in err
    assert _rows(coordinator).get("ok", 0) == 0


def test_no_worker_is_a_clear_error(broker: RedisServer, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "share", extra_docs=0)
    config = write_dist_config(
        tmp_path / "cfg", tmp_path / "dist", broker.url, {"worker_wait_s": 3}
    )
    sync = start_sync(config, root)
    out, err = sync.communicate(timeout=300)
    assert sync.returncode == 1, err
    assert "[ingest.no_workers]" in err and "ingest worker" in err
    assert json.loads(out)["error"]["code"] == "ingest.no_workers"
