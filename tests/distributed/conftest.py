"""Real components for the distributed-ingestion tests: ``redis-server`` (Debian) on a free
loopback port and real ``ingest worker`` processes (Celery prefork, the packaged MiniLM).

Every process a test starts runs in its own session and is ended by process group (SIGTERM,
then SIGKILL), so a test that kills or fails never leaves a worker or a broker behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_settings
from ingest.sync.run import run_sync
from tests.ingest.conftest import REPO, RULES_YAML, dump_index, write_docs

WORKER_READY_S = 300.0  # loading MiniLM on a busy 2-core machine took up to ~60 s
SLOW_PARSE = {"ENCLAVE_FAULTS": "parse:*=sleep:0.6"}
"""Every parse takes 0.6 s longer: a batch lasts long enough to kill its worker inside it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen[Any], grace: float = 15.0) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):  # leftovers: prefork children, parsers
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass
class RedisServer:
    """A ``redis-server`` without persistence (a restart comes back empty), on loopback and on
    any further ``bind`` addresses; ``url`` names the last of them (the one workers use)."""

    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    bind: tuple[str, ...] = ("127.0.0.1",)
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.bind[-1]}:{self.port}/0"

    def start(self) -> RedisServer:
        import redis

        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                *self.bind,
                *(["--requirepass", self.password] if self.password else []),
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.ping():
                    return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace=5)

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed in CI: .ci/run must install it")
        pytest.skip("redis-server not installed (Debian package redis-server; .ci/run has it)")
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary(), tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's broker, emptied before and after the test (restarted if a test killed it)."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.client().flushall()
    yield redis_server
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.client().flushall()


def write_dist_config(
    where: Path,
    data_dir: Path,
    broker_url: str | None,
    ingest: dict[str, Any] | None = None,
    extra: str = "",
) -> Path:
    """Coordinator/worker config: small batches and a short lease, so tests recover fast."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "access.yaml").write_text(RULES_YAML)
    values: dict[str, Any] = {
        "workers": 1,
        "commit_chunks": 4,
        "task_files": 2,
        "lease_ttl_s": 3,
        "worker_wait_s": 300,
        "broker_wait_s": 120,
    }
    if broker_url:
        values["broker_url"] = broker_url
    values.update(ingest or {})
    lines = [f'data_dir = "{data_dir}"', 'access_rules = "access.yaml"', "[ingest]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    config = where / "enclave.toml"
    config.write_text("\n".join(lines) + "\n" + extra)
    return config


@dataclass
class WorkerProc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def child_pids(self) -> list[int]:
        """Every process of this worker's session except its main process."""
        out = subprocess.run(["pgrep", "-s", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split() if int(p) != self.proc.pid]

    def kill9_all(self) -> None:
        """The machine is gone: SIGKILL every process of the worker at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def worker_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture
def start_workers(broker: RedisServer, tmp_path: Path) -> Iterator[Any]:
    """``start_workers(config, n, env=None) -> list[WorkerProc]``, each ready (model loaded)."""
    started: list[WorkerProc] = []

    def start(config: Path, n: int = 2, env: dict[str, str] | None = None) -> list[WorkerProc]:
        new = []
        for _ in range(n):
            name = f"w{len(started)}"
            log = tmp_path / f"worker-{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "ingest.cli",
                        "worker",
                        "--config",
                        str(config),
                        "--name",
                        f"{name}@%h",
                        "--loglevel",
                        "info",
                    ],
                    cwd=REPO,
                    env=worker_env(env),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            worker = WorkerProc(name, proc, log)
            started.append(worker)
            new.append(worker)
        wait_ready(broker, new)
        return new

    yield start
    for worker in started:
        stop_group(worker.proc)


def _announced_here(worker: WorkerProc, members: set[str]) -> bool:
    host = socket.gethostname()
    return any(f"{host}:{p}" in members for p in worker.child_pids())


def wait_ready(
    broker: RedisServer,
    workers: list[WorkerProc],
    announced: Callable[[WorkerProc, set[str]], bool] = _announced_here,
) -> None:
    """Until every worker's process announced itself (model loaded) in the broker:
    ``announced(worker, ready host:pid entries)`` says whether one did."""
    from ingest.distributed import keys

    client = broker.client()
    deadline = time.monotonic() + WORKER_READY_S
    while True:
        members = {m.decode() for m in client.zrangebyscore(keys.WORKERS, time.time(), "+inf")}
        ready = [w for w in workers if announced(w, members)]
        if len(ready) == len(workers):
            return
        for w in workers:
            if w.proc.poll() is not None:
                raise AssertionError(f"worker {w.name} exited: {w.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(w.log.read_text()[-1500:] for w in workers)
            raise AssertionError(f"workers not ready in {WORKER_READY_S} s:\n{logs}")
        time.sleep(0.2)


def start_sync(config: Path, root: Path, source: str = "handbook") -> subprocess.Popen[str]:
    """``ingest sync ... --json`` as a real coordinator process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "sync",
            str(root),
            "--source",
            source,
            "--json",
            "--config",
            str(config),
        ],
        cwd=REPO,
        env=worker_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_lease(
    broker: RedisServer, timeout: float = 300, host: str | None = None
) -> dict[str, Any]:
    """The holder (host, pid of the Celery process) of the first batch lease that appears (held
    by a process on ``host``, when given)."""
    client = broker.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in client.scan_iter(match="enclave:ingest:*:lease:*"):
            value = client.get(key)
            if value:
                holder = dict(json.loads(value))
                if host is None or holder["host"] == host:
                    return holder
        time.sleep(0.02)
    raise AssertionError(f"no worker{' on ' + host if host else ''} took a batch")


def make_tree(root: Path, extra_docs: int = 14) -> Path:
    """The ingest tests' documents plus ``extra_docs`` small policy pages (6 + extra files)."""
    write_docs(root)
    topics = ["parking", "laptops", "visitors", "badges", "printing", "meetings", "travel"]
    for i in range(extra_docs):
        topic = topics[i % 7]
        body = "\n\n".join(
            f"## Rule {j}\n\nFor {topic} case {i}-{j}, ask the {topic} desk on floor {j + 1}. "
            f"Requests close after {10 + i + j} working days and need a ticket number."
            for j in range(1 + i % 4)
        )
        (root / "policies").mkdir(parents=True, exist_ok=True)
        (root / "policies" / f"{topic}-{i:02d}.md").write_text(f"# {topic.title()} {i}\n\n{body}\n")
    return root


def clean_index(tmp: Path, root: Path) -> dict[str, dict[str, Any]]:
    """The reference: an in-process sync of ``root`` without a broker, into a fresh data dir."""
    settings = load_settings(write_dist_config(tmp / "clean-cfg", tmp / "clean", None))
    run_sync(settings, root, "handbook", workers=1)
    return dump_index(settings)


def finish_sync(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    """Wait for a ``start_sync`` process; its ``--json`` summary (it must exit 0)."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return dict(json.loads(out))
