"""``bench.ingest --scaleout``: the same corpus synced through Celery workers, and the embedding
service against in-process embedding, in the run that measured the in-process default.

- **Celery, 1 and 2 workers.** A loopback ``redis-server`` (Debian), ``ingest worker
  --processes 1`` children (each its own model, one torch thread, as the deploy files run
  them); the sync (this process) is the coordinator. Reported: wall time and chunks/s from the
  first file sent to the last commit (workers are started and their models loaded before),
  chunks/s per worker, the ratio to the raw embedding throughput measured in this run, and the
  coordinator's CPU time per file (everything the syncing process does: walk, hash, send,
  receive, write to Qdrant Edge and the state database).
- **Raw embedding with one torch thread**, the per-process budget of a worker.
- **The embedding service.** infinity-emb serving the packaged MiniLM on loopback
  (``ENCLAVE_TEST_INFINITY``, or ``.ci/venv-infinity``), ``embedding.backend = "openai"``
  against the in-process model on the same chunk texts, back to back, and the cosine between
  their vectors.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
READY_S = 600.0
NO_DISK = ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
WORKER = [sys.executable, "-m", "ingest.cli", "worker", "--processes", "1", "--loglevel", "warning"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), *NO_DISK],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 30
    while True:
        try:
            if client.ping():
                break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


def _start_workers(config: Path, n: int, url: str, logdir: Path) -> list[subprocess.Popen[bytes]]:
    import redis

    from ingest.distributed import keys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env["HF_HUB_OFFLINE"] = "1"
    procs = []
    for i in range(n):
        with (logdir / f"worker-{i}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [*WORKER, "--config", str(config), "--name", f"bench{i}@%h"],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + READY_S
    while client.zcount(keys.WORKERS, time.time(), "+inf") < n:
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            for p in procs:
                _stop(p)
            raise RuntimeError(f"ingest workers did not start (logs in {logdir})")
        time.sleep(0.2)
    return procs


def _celery_run(corpus: Path, tmp: Path, url: str, n: int, raw: float) -> dict[str, Any]:
    import redis

    from bench.ingest import _settings
    from ingest.sync.run import run_sync

    redis.Redis.from_url(url).flushall()
    work = tmp / f"celery-{n}"
    settings, cfg = _settings(work, None, None, extra=f'[ingest]\nbroker_url = "{url}"\n')
    workers = _start_workers(cfg, n, url, work)
    try:
        load = [round(x, 2) for x in os.getloadavg()]
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = run_sync(settings, corpus, "bench")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        for p in workers:
            _stop(p)
    files = summary.added + summary.failed_count + summary.skipped_count
    rate = summary.chunks / seconds
    dist = summary.distributed or {}
    return {
        "worker_processes": n,
        "load_average_start": load,
        "files": files,
        "chunks": summary.chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(rate, 2),
        "chunks_per_s_per_worker": round(rate / n, 2),
        "ratio_e2e_to_raw": round(rate / raw, 3),
        "coordinator_cpu_ms_per_file": round(1000 * cpu / max(files, 1), 1),
        "batches": dist.get("batches"),
        "resends": dist.get("resends"),
        "files_by_worker": dist.get("files_by_worker"),
    }


def _raw_one_thread(texts: list[str]) -> float:
    """The default backend's raw rate with one thread, as a worker process runs it
    (``ingest.worker_torch_threads = 1``; the model takes the count when it loads)."""
    from core.settings import EmbeddingSettings
    from ingest.encoding import threads
    from ingest.encoding.embed import create_embedder, default_models_dir

    before = threads.threads()
    threads.set_threads(1)
    try:
        embedder = create_embedder(EmbeddingSettings(), default_models_dir())
        embedder.warm_up()
        embedder.embed_documents(texts[:32])
        t0 = time.perf_counter()
        embedder.embed_documents(texts)
        return len(texts) / (time.perf_counter() - t0)
    finally:
        threads.set_threads(before or os.cpu_count() or 1)


def _service(texts: list[str], tmp: Path) -> dict[str, Any]:
    """infinity-emb on loopback vs the in-process model on the same texts, back to back."""
    sys.path.insert(0, str(REPO))
    from core.settings import EmbeddingSettings
    from ingest.encoding.embed import load_embedder
    from tests.index.infinity import SERVED_NAME, infinity, infinity_binary

    binary = infinity_binary()
    if binary is None:
        return {"error": "infinity-emb not installed (ENCLAVE_TEST_INFINITY, .ci/venv-infinity)"}
    local = load_embedder(EmbeddingSettings())
    with infinity(binary, tmp / "infinity.log") as base:
        load = [round(x, 2) for x in os.getloadavg()]
        served = load_embedder(
            EmbeddingSettings(backend="openai", base_url=base, model=SERVED_NAME)
        )
        served.embed_documents(texts[:32])
        rates: dict[str, list[float]] = {"service": [], "in_process": []}
        vectors: dict[str, list[list[float]]] = {}
        for _round in range(2):  # alternate, best of two each
            for name, emb in (("service", served), ("in_process", local)):
                t0 = time.perf_counter()
                vectors[name] = emb.embed_documents(texts)
                rates[name].append(len(texts) / (time.perf_counter() - t0))
    cosines = [
        sum(a * b for a, b in zip(u, v, strict=True))
        for u, v in zip(vectors["service"], vectors["in_process"], strict=True)
    ]
    best = {k: max(v) for k, v in rates.items()}
    return {
        "server": "infinity-emb 0.0.78, torch CPU, same host (loopback HTTP)",
        "load_average_start": load,
        "service_chunks_per_s": round(best["service"], 2),
        "in_process_chunks_per_s": round(best["in_process"], 2),
        "ratio_service_to_in_process": round(best["service"] / best["in_process"], 3),
        "cosine_min": round(min(cosines), 7),
        "cosine_mean": round(sum(cosines) / len(cosines), 7),
    }


def scaleout(
    corpus: Path, tmp: Path, in_process_chunks: int, texts: list[str], base: dict[str, Any]
) -> dict[str, Any]:
    raw = float(base["raw_embed_chunks_per_s"])
    out: dict[str, Any] = {
        "raw_embed_chunks_per_s_1_torch_thread": round(_raw_one_thread(texts), 2)
    }
    work = Path(tempfile.mkdtemp(prefix="scaleout-", dir=tmp))
    with redis_server(work) as url:
        for n in (1, 2):
            run = _celery_run(corpus, work, url, n, raw)
            run["same_chunks_as_in_process"] = run["chunks"] == in_process_chunks
            out[f"celery_{n}_worker{'s' if n > 1 else ''}"] = run
    out["in_process_coordinator_cpu_ms_per_file"] = base.get("sync_process_cpu_ms_per_file")
    out["embedding_service"] = _service(texts, work)
    return out
