"""A worker on a second machine (``tests.distributed.hosts``: its own network, host name, pids
and file system) joins a sync over TCP, with the broker behind a password, without seeing the
share or the coordinator's data; and when that machine drops off the network in the middle of
a batch, the batch is done again on this one and the index ends as a clean sync's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_settings
from ingest.distributed import keys
from tests.distributed.conftest import (
    SLOW_PARSE,
    RedisServer,
    WorkerProc,
    clean_index,
    finish_sync,
    make_tree,
    redis_binary,
    start_sync,
    stop_group,
    wait_for_lease,
    wait_ready,
    worker_env,
    write_dist_config,
)
from tests.distributed.hosts import SecondHost, require_namespaces
from tests.ingest.conftest import assert_same_index, dump_index

pytestmark = pytest.mark.slow


@pytest.fixture
def second_host() -> Iterator[SecondHost]:
    require_namespaces()
    host = SecondHost.create()
    try:
        yield host
    finally:
        host.destroy()


@pytest.fixture
def broker(second_host: SecondHost, tmp_path: Path) -> Iterator[RedisServer]:
    """A broker on this machine's loopback and on its address towards the second host, behind
    a password (it is reachable from another machine); ``url`` is the network address."""
    server = RedisServer(
        redis_binary(),
        tmp_path,
        bind=("127.0.0.1", second_host.host_ip),
        password="s3cret-broker",
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def remote_worker(second_host: SecondHost, broker: RedisServer, tmp_path: Path) -> Iterator[Any]:
    """``remote_worker(hide, env=None) -> log``: one ``ingest worker`` on the second host with
    its own config file and data directory, started and waited for (model loaded)."""
    started: list[Any] = []

    def start(hide: list[Path], env: dict[str, str] | None = None) -> Path:
        config = write_dist_config(
            tmp_path / "host-b" / "etc", tmp_path / "host-b" / "data", broker.url
        )
        log = tmp_path / "host-b" / "worker.log"
        proc = second_host.worker(config, log, hide, worker_env(env))
        started.append(proc)
        wait_ready(
            broker,
            [WorkerProc("the second host's worker", proc, log)],
            lambda _, members: any(m.startswith(f"{second_host.hostname}:") for m in members),
        )
        return log

    yield start
    for proc in started:
        stop_group(proc)


def _wait_for_run(broker: RedisServer, sync: Any) -> None:
    """Until the coordinator registered its run (it is now waiting for a worker)."""
    client = broker.client()
    deadline = time.monotonic() + 120
    while not any(True for _ in client.scan_iter(match=keys.active_run("*"))):
        assert sync.poll() is None, sync.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the coordinator never registered its run"
        time.sleep(0.1)


def test_a_worker_on_another_machine_joins_a_waiting_sync_and_does_all_of_it(
    second_host: SecondHost, broker: RedisServer, remote_worker: Any, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "share", extra_docs=6)
    config = write_dist_config(
        tmp_path / "host-a" / "etc", tmp_path / "host-a" / "data", broker.url
    )
    sync = start_sync(config, root)  # no worker anywhere yet: the sync waits for one
    _wait_for_run(broker, sync)
    hidden = [root, tmp_path / "host-a"]
    log = remote_worker(hidden)
    assert sync.poll() is None  # the worker joined a sync that was already running
    summary = finish_sync(sync)

    assert summary["added"] == 12 and summary["failed_count"] == 0
    assert summary["embedded"] == summary["chunks"] > 0
    by_worker = summary["distributed"]["files_by_worker"]
    assert sum(by_worker.values()) == 12
    assert all(name.startswith(f"{second_host.hostname}:") for name in by_worker), by_worker
    # It worked from the bytes in the tasks alone: the share and the coordinator's data
    # directory were empty to it, and it wrote no index or state of its own.
    text = log.read_text()
    for path in hidden:
        assert f"hidden {path}: 0 entries" in text, text[:2000]
    (whoami,) = [line for line in text.splitlines() if line.startswith("host ")]
    assert whoami.startswith(f"host {second_host.hostname}, pid ") and "default" not in whoami
    data_b = tmp_path / "host-b" / "data"  # at most an export of the model, no index or state
    written = [p for p in data_b.rglob("*") if p.is_file() and "models" not in p.parts]
    assert not written, written
    assert_same_index(dump_index(load_settings(config)), clean_index(tmp_path, root))


def test_a_machine_cut_off_mid_batch_loses_the_batch_to_the_other(
    second_host: SecondHost,
    broker: RedisServer,
    remote_worker: Any,
    start_workers: Any,
    tmp_path: Path,
) -> None:
    root = make_tree(tmp_path / "share")
    config = write_dist_config(
        tmp_path / "host-a" / "etc", tmp_path / "host-a" / "data", broker.url
    )
    remote_worker([root, tmp_path / "host-a"], env=SLOW_PARSE)
    (local,) = start_workers(config, 1, env=SLOW_PARSE)
    sync = start_sync(config, root)
    wait_for_lease(broker, host=second_host.hostname)  # the far machine is in a batch
    time.sleep(0.3)
    second_host.partition()  # ... and drops off the network, its worker still running
    summary = finish_sync(sync)

    dist = summary["distributed"]
    assert dist["resends"] >= 1, dist
    assert summary["failed_count"] == 0 and summary["added"] == 20
    by_worker = dist["files_by_worker"]
    assert sum(by_worker.values()) == 20
    here = {name: n for name, n in by_worker.items() if not name.startswith(second_host.hostname)}
    assert sum(here.values()) >= 1, by_worker  # the cut-off batch, at least, was done here
    assert local.proc.poll() is None
    assert_same_index(dump_index(load_settings(config)), clean_index(tmp_path, root))
