"""The worker side: ``ingest worker`` processes run :func:`process_files` on batches of files.

Each Celery process (prefork child, ``ingest.worker_processes`` per worker) loads the embedder
once, in ``worker_process_init``, with ``ingest.worker_torch_threads`` torch threads (measured:
on a busy host, one thread per process and more processes beat fewer processes with more
threads). Parsing runs in the same :class:`~ingest.parsing.workers.ParsePool` as an in-process
sync, so a file's timeout, a parser crash and worker recycling behave the same; then the batch's
chunks are embedded in one model call and the results go to the sync's Redis stream.

A task first checks that it belongs to the live run of its sync (tasks left in the queue by a
coordinator that died skip themselves), then takes the batch's lease and keeps it fresh while it
works; results are written before the lease is released, so a coordinator that sees the lease
gone finds the results in the stream or knows the batch was lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from core.errors import EnclaveError
from core.settings import IngestSettings, Settings
from ingest.distributed import keys
from ingest.distributed.codec import (
    ERROR,
    FATAL,
    OK,
    EmbedderIdentity,
    FileJob,
    FileResult,
    TaskHeader,
)
from ingest.parsing.workers import ParseOutcome, ParsePool

log = logging.getLogger("enclave.ingest.worker")

MAX_STARTS = 4
"""A batch started this often without finishing killed its workers each time (out of memory,
a crash in the model): its files fail with ``ingest.worker_crashed`` instead of looping."""

WORKER_TTL_S = 30.0
WORKER_CRASHED = "ingest.worker_crashed"
WORKER_MISMATCH = "ingest.worker_mismatch"
WORKER_FAILED = "ingest.worker_failed"


@dataclass
class _Process:
    """What one worker process holds between tasks."""

    settings: Settings | None = None
    embedder: Any = None
    load_error: str | None = None
    client: redis.Redis | None = None
    client_pid: int = 0
    pool: ParsePool | None = None
    pool_parsing: str = ""


_proc = _Process()


def configure(settings: Settings) -> None:
    """In the worker's main process, before Celery starts its processes."""
    from celery.signals import worker_process_init

    _proc.settings = settings
    worker_process_init.connect(_init_process, weak=False)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _redis() -> redis.Redis:
    """One client per process (a forked child must not share its parent's sockets)."""
    if _proc.client is None or _proc.client_pid != os.getpid():
        assert _proc.settings is not None and _proc.settings.ingest.broker_url is not None
        _proc.client = redis.Redis.from_url(
            _proc.settings.ingest.broker_url.get_secret_value(),
            socket_timeout=30,
            socket_connect_timeout=5,
            health_check_interval=10,
        )
        _proc.client_pid = os.getpid()
    return _proc.client


def _init_process(**_: Any) -> None:
    """Load the model before the first task; then announce this process as ready."""
    settings = _proc.settings
    assert settings is not None, "configure() runs before the worker starts"
    # Celery's prefork children carry multiprocessing's "daemon" flag, which forbids children,
    # and billiard's authentication key, which the standard library refuses to pass on; this
    # process starts its parser pool (a forkserver and parse processes that exit with it: they
    # read from pipes this process holds) with the standard library, so give it both back.
    me = multiprocessing.current_process()  # billiard's process object, installed by Celery
    me._config["daemon"] = False  # type: ignore[attr-defined]
    me._config["authkey"] = multiprocessing.process.AuthenticationString(os.urandom(32))  # type: ignore[attr-defined]
    threads = settings.ingest.worker_torch_threads
    try:
        from ingest.encoding.embed import load_embedder
        from ingest.encoding.threads import set_threads

        if settings.embedding.backend != "openai":
            set_threads(threads)

        _proc.embedder = load_embedder(settings.embedding, settings.models_dir)
    except Exception as exc:  # reported to the coordinator by every task (WorkerFailedError)
        _proc.load_error = f"{type(exc).__name__}: {exc}"
        log.error("the embedder did not load: %s", _proc.load_error)
    threading.Thread(target=_announce, name="enclave-worker-ready", daemon=True).start()


def _announce() -> None:
    """Keep ``host:pid`` in the set of ready workers (the coordinator waits for one)."""
    name = worker_name()
    while True:
        with contextlib.suppress(redis.RedisError):
            now = time.time()
            pipe = _redis().pipeline(transaction=False)
            pipe.zadd(keys.WORKERS, {name: now + WORKER_TTL_S})
            pipe.zremrangebyscore(keys.WORKERS, "-inf", now)
            pipe.execute()
        time.sleep(WORKER_TTL_S / 3)


class Lease:
    """``SET NX PX`` on the batch's lease key, refreshed by a thread while the batch runs."""

    def __init__(self, key: str, ttl_s: float, info: dict[str, Any]) -> None:
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.token = json.dumps({**info, "token": uuid.uuid4().hex})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        r = _redis()
        if not r.set(self.key, self.token, nx=True, px=self.ttl_ms):
            held: Any = r.get(self.key)
            if held is None or not _holder_dead(bytes(held)):
                return False
            # The holder died on this host (a killed process whose task Celery requeued to
            # us): take over at once instead of waiting for its lease to expire.
            swapped = r.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return nil",
                1,
                self.key,
                held,
                self.token,
                self.ttl_ms,
            )
            if not swapped:
                return False
        self._thread = threading.Thread(target=self._beat, name="enclave-lease", daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            with contextlib.suppress(redis.RedisError):
                _redis().eval(
                    "if redis.call('get', KEYS[1]) == ARGV[1] then "
                    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0",
                    1,
                    self.key,
                    self.token,
                    self.ttl_ms,
                )

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(redis.RedisError):
            _redis().eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('del', KEYS[1]) end return 0",
                1,
                self.key,
                self.token,
            )


def _holder_dead(raw: bytes) -> bool:
    try:
        holder = json.loads(raw)
        pid = int(holder["pid"])
    except (ValueError, KeyError, TypeError):
        return False
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (killed, not yet reaped) is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


# -- the task ----------------------------------------------------------------------------------
def process_files(task: Any, header_data: dict[str, Any], files: list[dict[str, Any]]) -> str:
    """Celery task body (registered by :func:`ingest.distributed.app.make_app`); the return
    value only labels the task in the worker's log."""
    header = TaskHeader.from_wire(header_data)
    assert _proc.settings is not None
    r = _redis()
    active: Any = r.get(keys.active_run(header.channel))
    if active is None or bytes(active).decode() != header.run:
        return "stale-run"
    info = {"host": socket.gethostname(), "pid": os.getpid(), "attempt": header.attempt}
    ttl = _proc.settings.ingest.lease_ttl_s
    lease = Lease(keys.lease(header.channel, header.batch), ttl, info)
    if not lease.acquire():
        return "leased-elsewhere"
    jobs = [FileJob.from_wire(f) for f in files]
    try:
        starts_key = keys.starts(header.channel, header.batch)
        starts = int(r.incr(starts_key))
        r.expire(starts_key, keys.RESULT_TTL_S)
        if starts > MAX_STARTS:
            message = (
                f"an ingest worker died {starts - 1} times on the batch holding this file "
                "(killed, out of memory?); it was given up"
            )
            _push(
                header, [_result(header, j, ERROR, code=WORKER_CRASHED, msg=message) for j in jobs]
            )
            return "given-up"
        problem = _check_embedder(header)
        if problem is None:
            try:
                results = _work(header, jobs)
            except EnclaveError as exc:  # the parser cannot start, the embedding server fails
                problem = exc.code, f"ingest worker {worker_name()}: {exc.message}"
        if problem is not None:
            code, message = problem
            _push(header, [_fatal(header, code, message)])
            r.delete(starts_key)
            return "fatal"
        _push(header, results)
        r.delete(starts_key)
        return "done"
    finally:
        lease.release()


def _fatal(header: TaskHeader, code: str, message: str) -> FileResult:
    return FileResult(FATAL, "", "", header.fingerprint, worker_name(), code=code, message=message)


def _check_embedder(header: TaskHeader) -> tuple[str, str] | None:
    """``(code, message)`` when this worker cannot embed for this sync."""
    if _proc.load_error is not None or _proc.embedder is None:
        return WORKER_FAILED, (
            f"ingest worker {worker_name()} cannot load its embedding model: {_proc.load_error}"
        )
    assert _proc.settings is not None
    emb = _proc.embedder
    seq = None if emb.backend == "openai" else _proc.settings.embedding.max_seq_length
    mine = EmbedderIdentity(emb.model_id, emb.backend, seq)
    if mine != header.embedder:
        return WORKER_MISMATCH, (
            f"ingest worker {worker_name()} embeds with {mine.describe()}, but this sync needs "
            f"{header.embedder.describe()}: give the workers the same [embedding] settings as "
            "the coordinator"
        )
    if header.dim is not None and emb.dim != header.dim:
        return WORKER_MISMATCH, (
            f"ingest worker {worker_name()}'s model gives {emb.dim}-dimensional vectors, the "
            f"index holds {header.dim}-dimensional ones"
        )
    return None


def _work(header: TaskHeader, jobs: list[FileJob]) -> list[FileResult]:
    """Parse every file of the batch, embed all their chunks in one call."""
    outcomes = _parse(header.parsing, jobs)
    texts = [c[0] for j in jobs for c in (outcomes[j.key].chunks or [])]
    vectors = _proc.embedder.embed_documents(texts) if texts else []
    from ingest.sync.pipeline import release_free_memory

    release_free_memory()
    results: list[FileResult] = []
    at = 0
    for job in jobs:
        out = outcomes[job.key]
        if out.chunks:
            n = len(out.chunks)
            results.append(
                _result(header, job, OK, chunks=out.chunks, vectors=vectors[at : at + n])
            )
            at += n
        else:
            results.append(
                _result(
                    header,
                    job,
                    ERROR,
                    code=out.code or "ingest.empty",
                    msg=out.message or "no text could be extracted from the file",
                )
            )
    return results


def _parse(parsing: str, jobs: list[FileJob]) -> dict[str, ParseOutcome]:
    """Outcomes by job key, from the process's parser pool (one file at a time)."""
    if _proc.pool is None or _proc.pool_parsing != parsing:
        if _proc.pool is not None:
            _proc.pool.close()
        _proc.pool = ParsePool(IngestSettings.model_validate_json(parsing), 1)
        _proc.pool_parsing = parsing
    pool = _proc.pool
    tmp = Path(tempfile.mkdtemp(prefix="enclave-task-"))
    try:
        paths: list[Path] = []
        for i, job in enumerate(jobs):
            folder = tmp / str(i)
            folder.mkdir()
            path = folder / (Path(job.rel_path).name or "file")
            path.write_bytes(job.data)
            paths.append(path)
        out: dict[str, ParseOutcome] = {}
        todo = list(range(len(jobs)))
        running: set[int] = set()
        while todo or running:
            while todo and pool.idle():
                i = todo.pop(0)
                pool.submit(i, paths[i])
                running.add(i)
            for outcome in pool.poll(1.0):
                running.discard(outcome.task_id)
                job = jobs[outcome.task_id]
                message = outcome.message
                if message:  # a reason names the worker's copy: name the share's path instead
                    message = message.replace(str(paths[outcome.task_id]), job.rel_path)
                out[job.key] = ParseOutcome(outcome.task_id, outcome.chunks, outcome.code, message)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _result(
    header: TaskHeader,
    job: FileJob,
    kind: str,
    *,
    chunks: Any = None,
    vectors: Any = None,
    code: str | None = None,
    msg: str | None = None,
) -> FileResult:
    return FileResult(
        kind,
        job.rel_path,
        job.sha256,
        header.fingerprint,
        worker_name(),
        chunks=chunks,
        vectors=vectors,
        code=code,
        message=msg,
    )


def _push(header: TaskHeader, results: list[FileResult]) -> None:
    stream = keys.results(header.channel)
    pipe = _redis().pipeline(transaction=False)
    for res in results:
        pipe.xadd(stream, {"r": res.encode()})
    pipe.expire(stream, keys.RESULT_TTL_S)
    pipe.execute()
