"""The coordinator's side: a drop-in for :class:`~ingest.parsing.workers.ParsePool` whose
"processes" are Celery workers anywhere.

:meth:`DistributedPool.submit` collects files into batches of ``ingest.task_files`` files (or
``ingest.task_mb``), at most ``ingest.tasks_in_flight`` batches in flight (queued tasks carry
file bytes and live in the broker's memory); :meth:`DistributedPool.poll` returns the outcomes
that arrived, each with the chunks *and* their vectors, so the sync skips its own embedding.

Finding lost work does not wait for the broker's visibility timeout (an hour, because it must
exceed the longest task): a batch whose lease disappeared without all its results, or that shows
no lease for a lease TTL while nothing is queued or unacknowledged, is sent again. After the
broker comes back without its data (no persistence), everything unfinished is sent again; with
its data (AOF), every batch must show a lease again or be resent by the same rules. Results of
a previous run of the same sync that are still in the stream (the coordinator was killed) are
used when their file comes up with the same content.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from kombu.exceptions import OperationalError

from core.errors import (
    BrokerUnavailableError,
    EmbeddingServiceError,
    EnclaveError,
    NoWorkersError,
    ParserUnavailableError,
    WorkerFailedError,
    WorkerMismatchError,
)
from core.settings import Settings
from ingest.distributed import keys
from ingest.distributed.app import TASK_NAME, broker_url, make_app
from ingest.distributed.codec import (
    FATAL,
    OK,
    FileJob,
    FileResult,
    TaskHeader,
    identity_of,
    job_key,
)
from ingest.parsing.workers import ParseOutcome

log = logging.getLogger("enclave.ingest.coordinator")

T = TypeVar("T")
UNREADABLE = "ingest.unreadable"
_BROKER_ERRORS = (redis.RedisError, OperationalError, OSError)
_UNACKED = "unacked"  # kombu's Redis transport: delivered, not yet acknowledged messages
_FATAL_ERRORS: dict[str, type[EnclaveError]] = {
    WorkerMismatchError.code: WorkerMismatchError,
    EmbeddingServiceError.code: EmbeddingServiceError,
    ParserUnavailableError.code: ParserUnavailableError,
}
_MAX_LEFTOVERS = 4096


@dataclass
class _File:
    task_id: int
    path: Path
    rel_path: str
    sha256: str
    size: int

    @property
    def key(self) -> str:
        return job_key(self.rel_path, self.sha256)


@dataclass
class _Batch:
    batch_id: str
    files: dict[str, _File]
    attempt: int = 0
    seen_lease: bool = False
    suspect_since: float | None = None


@dataclass
class PoolStats:
    batches: int = 0
    resends: int = 0
    duplicates_ignored: int = 0
    reused_results: int = 0
    broker_errors: int = 0
    broker_state_lost: int = 0
    workers: int = 0
    by_worker: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "resends": self.resends,
            "duplicates_ignored": self.duplicates_ignored,
            "reused_results": self.reused_results,
            "broker_errors": self.broker_errors,
            "broker_state_lost": self.broker_state_lost,
            "workers_seen": self.workers,
            "files_by_worker": dict(sorted(self.by_worker.items())),
        }


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class DistributedPool:
    """Files in, outcomes with vectors out; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        channel: str,
        dim: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        ing = settings.ingest
        self._ing = ing
        self._url = broker_url(ing)
        self._where = redacted(self._url)
        self._clock = clock
        self._channel = channel
        self._run = uuid.uuid4().hex
        self._parsing = ing.parsing_json()
        self._identity = identity_of(settings.embedding)
        self._dim = dim
        self._fingerprint = TaskHeader(
            channel, self._run, "", 0, self._parsing, self._identity, dim
        ).fingerprint
        self.capacity = ing.tasks_in_flight * ing.task_files
        self.stats = PoolStats()
        self._open: list[_File] = []
        self._batches: dict[str, _Batch] = {}
        self._batch_of: dict[str, str] = {}
        self._ready: list[ParseOutcome] = []
        self._leftovers: dict[str, FileResult] = {}
        self._last_id = "0-0"
        self._down_since: float | None = None
        self._reconnected = False
        self._created = clock()
        self._last_lease_check = 0.0
        self._last_worker_check = 0.0
        self._no_workers_since: float | None = self._created
        self._app = make_app(ing)
        self._r = redis.Redis.from_url(
            self._url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=10
        )
        self._call(lambda: self._r.set(keys.active_run(channel), self._run), "claim the run")
        self._take_leftovers()

    # -- the pool surface ----------------------------------------------------------------------
    def idle(self) -> int:
        if len(self._open) >= self._ing.task_files:
            return 0
        return max(0, self.capacity - self._files_in_flight())

    def submit(
        self, task_id: int, path: Path, *, rel_path: str | None = None, sha256: str | None = None
    ) -> None:
        if rel_path is None or sha256 is None:
            raise ValueError("the distributed pool needs each file's rel_path and sha256")
        key = job_key(rel_path, sha256)
        reused = self._leftovers.pop(key, None)
        if reused is not None:
            self.stats.reused_results += 1
            self._ready.append(self._outcome(task_id, reused))
            return
        try:
            size = path.stat().st_size
        except OSError as exc:
            self._ready.append(_unreadable(task_id, exc))
            return
        self._open.append(_File(task_id, path, rel_path, sha256, size))
        full = len(self._open) >= self._ing.task_files or (
            sum(f.size for f in self._open) >= self._ing.task_mb * 1_000_000
        )
        if full and self._can_send():
            self._flush()

    def poll(self, timeout: float) -> list[ParseOutcome]:
        if self._reconnected:
            self._reconnected = False
            self._after_reconnect()
        if self._open and self._can_send():
            self._flush()  # the sync waits: send what there is
        out, self._ready = self._ready, []
        if out:
            return out
        block_ms = max(1, int(timeout * 1000))
        entries = self._call(
            lambda: self._r.xread({keys.results(self._channel): self._last_id}, 64, block_ms),
            "read results",
        )
        out = self._handle(entries)
        now = self._clock()
        if now - self._last_lease_check >= min(1.0, self._ing.lease_ttl_s / 2):
            self._last_lease_check = now
            out += self._check_leases()
        if now - self._last_worker_check >= 2.0:
            self._last_worker_check = now
            self._check_workers(now)
        out += self._ready
        self._ready = []
        return out

    def pids(self) -> list[int]:
        return []

    def close(self) -> None:
        """Release the run: tasks still queued for it skip themselves."""
        try:
            self._r.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('del', KEYS[1]) end return 0",
                1,
                keys.active_run(self._channel),
                self._run,
            )
        except _BROKER_ERRORS:
            log.warning("could not release the run on the broker at %s", self._where)
        finally:
            self._r.close()

    # -- batches -------------------------------------------------------------------------------
    def _files_in_flight(self) -> int:
        return len(self._open) + len(self._batch_of) + len(self._ready)

    def _can_send(self) -> bool:
        return len(self._batches) < self._ing.tasks_in_flight

    def _flush(self) -> None:
        files, self._open = self._open, []
        ident = hashlib.sha256(
            "\n".join([self._run, *sorted(f.key for f in files)]).encode()
        ).hexdigest()[:20]
        batch = _Batch(ident, {f.key: f for f in files})
        self._batches[ident] = batch
        for f in files:
            self._batch_of[f.key] = ident
        self.stats.batches += 1
        self._send(batch)

    def _send(self, batch: _Batch) -> None:
        jobs: list[dict[str, Any]] = []
        for key, f in list(batch.files.items()):
            try:
                data = f.path.read_bytes()
            except OSError as exc:
                self._done(batch, key)
                self._ready.append(_unreadable(f.task_id, exc))
                continue
            jobs.append(FileJob(f.rel_path, f.sha256, data).to_wire())
        if not jobs:
            return
        header = TaskHeader(
            self._channel,
            self._run,
            batch.batch_id,
            batch.attempt,
            self._parsing,
            self._identity,
            self._dim,
        )
        batch.seen_lease, batch.suspect_since = False, None
        limit = len(jobs) * self._ing.parse_timeout_s + 600
        self._call(
            lambda: self._app.send_task(
                TASK_NAME,
                args=[header.to_wire(), jobs],
                task_id=f"{batch.batch_id}.{batch.attempt}.{self._run[:8]}",
                queue=self._ing.queue,
                time_limit=limit,
                retry=False,
            ),
            "send a batch",
        )

    def _resend(self, batch: _Batch, why: str) -> None:
        if not batch.files:
            return
        batch.attempt += 1
        self.stats.resends += 1
        log.warning(
            "batch %s (%d files) %s: sending it again", batch.batch_id, len(batch.files), why
        )
        self._send(batch)

    def _done(self, batch: _Batch, key: str) -> _File:
        f = batch.files.pop(key)
        self._batch_of.pop(key, None)
        if not batch.files:
            self._batches.pop(batch.batch_id, None)
        return f

    # -- results -------------------------------------------------------------------------------
    def _handle(self, entries: Any) -> list[ParseOutcome]:
        out: list[ParseOutcome] = []
        seen: list[Any] = []
        for _stream, items in entries or []:
            for entry_id, fields in items:
                self._last_id = entry_id
                seen.append(entry_id)
                outcome = self._apply(fields.get(b"r"))
                if outcome is not None:
                    out.append(outcome)
        if seen:  # handed to the sync (or dropped): the coordinator is the only reader
            stream = keys.results(self._channel)
            self._call(lambda: self._r.xdel(stream, *seen), "delete read results")
        return out

    def _apply(self, blob: bytes | None) -> ParseOutcome | None:
        try:
            result = FileResult.decode(blob or b"")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropped an unreadable result: %s", exc)
            return None
        if result.fingerprint != self._fingerprint:
            self.stats.duplicates_ignored += 1
            return None
        if result.kind == FATAL:
            cls = _FATAL_ERRORS.get(result.code or "", WorkerFailedError)
            raise cls(result.message or "an ingest worker failed")
        batch_id = self._batch_of.get(result.key)
        batch = self._batches.get(batch_id or "")
        if batch is None or result.key not in batch.files:
            self.stats.duplicates_ignored += 1
            return None
        f = self._done(batch, result.key)
        self.stats.by_worker[result.worker] = self.stats.by_worker.get(result.worker, 0) + 1
        return self._outcome(f.task_id, result)

    @staticmethod
    def _outcome(task_id: int, result: FileResult) -> ParseOutcome:
        if result.kind == OK and result.chunks:
            return ParseOutcome(task_id, result.chunks, vectors=result.vectors)
        return ParseOutcome(task_id, None, result.code, result.message)

    def _take_leftovers(self) -> None:
        """Results a killed run of this sync left in the stream: kept for reuse, by key."""
        stream = keys.results(self._channel)
        start = "-"
        while True:
            items: Any = self._call(
                functools.partial(self._r.xrange, stream, start, "+", 256), "read old results"
            )
            if not items:
                return
            for _entry_id, fields in items:
                try:
                    result = FileResult.decode(bytes(fields.get(b"r") or b""))
                except (ValueError, KeyError, TypeError):
                    continue
                wanted = result.fingerprint == self._fingerprint and result.kind != FATAL
                if wanted and len(self._leftovers) < _MAX_LEFTOVERS:
                    self._leftovers[result.key] = result
            ids = [_text(entry_id) for entry_id, _ in items]
            self._call(functools.partial(self._r.xdel, stream, *ids), "delete old results")
            start = f"({ids[-1]}"

    # -- lost work -----------------------------------------------------------------------------
    def _check_leases(self) -> list[ParseOutcome]:
        batches = list(self._batches.values())
        if not batches:
            return []
        lease_keys = [keys.lease(self._channel, b.batch_id) for b in batches]
        held = self._call(lambda: self._r.mget(lease_keys), "check leases")
        quiet = self._call(
            lambda: self._r.llen(self._ing.queue) == 0 and self._r.hlen(_UNACKED) == 0,
            "check the queue",
        )
        now = self._clock()
        lost: list[tuple[_Batch, str]] = []
        for batch, value in zip(batches, held, strict=True):
            if value is not None:
                batch.seen_lease, batch.suspect_since = True, None
            elif batch.seen_lease:
                lost.append((batch, "lost its worker"))
            elif quiet:
                if batch.suspect_since is None:
                    batch.suspect_since = now
                elif now - batch.suspect_since >= self._ing.lease_ttl_s:
                    lost.append((batch, "is neither queued nor running"))
            else:
                batch.suspect_since = None
        if not lost:
            return []
        # A worker writes its results before it releases its lease: read them first.
        stream = keys.results(self._channel)
        out = self._handle(
            self._call(lambda: self._r.xread({stream: self._last_id}, 1000), "read results")
        )
        for batch, why in lost:
            if self._batches.get(batch.batch_id) is batch:
                self._resend(batch, why)
        return out

    def _check_workers(self, now: float) -> None:
        live = int(
            self._call(lambda: self._r.zcount(keys.WORKERS, time.time(), "+inf"), "count workers")
        )
        self.stats.workers = max(self.stats.workers, live)
        if live:
            self._no_workers_since = None
            return
        if self._no_workers_since is None:
            self._no_workers_since = now
        elif now - self._no_workers_since >= self._ing.worker_wait_s:
            raise NoWorkersError(
                f"no ingest worker has been connected to the broker at {self._where} for "
                f"{self._ing.worker_wait_s:g} s: start `ingest worker` with the same broker "
                "(ingest.broker_url), or unset ingest.broker_url to sync in this process"
            )

    # -- the broker ----------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried while the broker is unreachable (at most ``broker_wait_s``)."""
        delay = 0.2
        while True:
            try:
                value = fn()
            except _BROKER_ERRORS as exc:
                self.stats.broker_errors += 1
                now = self._clock()
                if self._down_since is None:
                    self._down_since = now
                    log.warning("broker at %s unreachable (%s: %s)", self._where, what, exc)
                if now - self._down_since >= self._ing.broker_wait_s:
                    raise BrokerUnavailableError(
                        f"the broker at {self._where} has been unreachable for "
                        f"{self._ing.broker_wait_s:g} s ({what}: {type(exc).__name__}: {exc}); "
                        "the next sync resumes where this one stopped"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if self._down_since is not None:
                self._down_since = None
                self._reconnected = True
                log.warning("broker at %s reachable again", self._where)
            return value

    def _after_reconnect(self) -> None:
        """The broker came back: with its data lost, resend everything unfinished."""
        run_key = keys.active_run(self._channel)
        if self._call(lambda: self._r.get(run_key), "check the run") != self._run.encode():
            self.stats.broker_state_lost += 1
            self._call(lambda: self._r.set(run_key, self._run), "claim the run")
            self._last_id = "0-0"
            for batch in list(self._batches.values()):
                self._resend(batch, "was lost with the broker's data")
            return
        for batch in self._batches.values():  # each must show a lease again or be queued
            batch.seen_lease, batch.suspect_since = False, None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _unreadable(task_id: int, exc: OSError) -> ParseOutcome:
    return ParseOutcome(task_id, None, UNREADABLE, f"cannot read the file: {exc.strerror or exc}")
