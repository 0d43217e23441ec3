"""Parsing in worker processes: one file per worker at a time, a timeout, crash isolation.

``ProcessPoolExecutor`` cannot do what a sync needs: a crash of one worker breaks the whole pool
and a stuck task cannot be cancelled. This small pool gives each worker its own pipe; the
parent hands out one file per idle worker and

- kills a worker whose file takes longer than ``ingest.parse_timeout_s`` (file ``failed``,
  code ``ingest.timeout``) and starts a fresh one;
- reports a worker that died on a file (segfault, OOM kill) as that file ``failed`` (code
  ``ingest.worker_crashed``) and starts a fresh one;
- recycles a worker after ``max_tasks`` files, so a leak in a parser cannot grow without bound.

Workers start from a ``forkserver`` that has already imported the parser (``ingest.parsing.chunk``),
so a restart costs a fork, not a cold import. Chunks travel back as plain tuples, with their
lexical (sparse) vector already computed in the worker, off the parent's embedding thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from core.errors import IngestError, ParserUnavailableError
from core.settings import IngestSettings
from ingest.faults import ENV as FAULTS_ENV

TIMEOUT = "ingest.timeout"
WORKER_CRASHED = "ingest.worker_crashed"
PARSE_FAILED = "ingest.parse_failed"

# (text, section, title, page, lexical vector indices, lexical vector values); the position in
# the list is the chunk index.
ChunkData = tuple[str, str | None, str | None, int | None, list[int], list[float]]


# Imported once in the forkserver, shared by every worker forked from it
# (``ingest.parsing.isolation`` first: it keeps torch out of the parsers; then
# ``ingest.parsing.chunk``: it prepares unstructured for offline use before unstructured is
# imported).
PRELOAD = [
    "ingest.parsing.isolation",
    "ingest.parsing.chunk",
    "ingest.encoding.sparse",
    "ingest.faults",
    "unstructured.file_utils.filetype",
    *(
        f"unstructured.partition.{m}"
        for m in ("text", "html", "docx", "pptx", "xlsx", "email", "pdf")
    ),
]


@dataclass(frozen=True)
class ParseOutcome:
    """A file's chunks, or why there are none (``code``, ``message``). ``vectors``: the chunks'
    dense vectors when the pool embedded them too (distributed workers), else ``None``."""

    task_id: int
    chunks: list[ChunkData] | None
    code: str | None = None
    message: str | None = None
    vectors: list[list[float]] | None = None


def _worker_main(conn: Connection, settings_json: str, fault_spec: str | None) -> None:
    """Body of a worker process: parse files until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Fault points of this sync (the forkserver's environment may be older than this sync's).
    if fault_spec is None:
        os.environ.pop(FAULTS_ENV, None)
    else:
        os.environ[FAULTS_ENV] = fault_spec
    try:
        from ingest import faults
        from ingest.encoding.sparse import encode_document
        from ingest.parsing.chunk import chunk_file

        settings = IngestSettings.model_validate_json(settings_json)
    except Exception as exc:
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task_id, path = msg
        conn.send(("started", task_id))
        try:
            faults.on_parse(Path(path).name)
            chunks = chunk_file(Path(path), settings)
            data = []
            for c in chunks:
                lexical = encode_document(c.text)
                data.append((c.text, c.section, c.title, c.page, lexical.indices, lexical.values))
            reply: tuple[Any, ...] = ("ok", task_id, data)
        except IngestError as exc:
            reply = ("error", task_id, exc.code, exc.message)
        except Exception as exc:  # a parser bug on one file must not stop the sync
            reply = ("error", task_id, PARSE_FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Slot:
    process: BaseProcess | None = None
    conn: Connection | None = None
    task_id: int | None = None
    started: float = 0.0
    done: int = 0


class ParsePool:
    """Up to ``workers`` parse processes; :meth:`submit` to an idle one, :meth:`poll` results."""

    def __init__(self, settings: IngestSettings, workers: int, *, max_tasks: int = 250) -> None:
        self._settings_json = settings.parsing_json()
        self._timeout = settings.parse_timeout_s
        self._max_tasks = max_tasks
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._slots = [_Slot() for _ in range(max(1, workers))]

    # -- bookkeeping -------------------------------------------------------------------------
    def idle(self) -> int:
        return sum(1 for s in self._slots if s.task_id is None)

    def busy(self) -> int:
        return len(self._slots) - self.idle()

    def _start(self, slot: _Slot) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self._settings_json, os.environ.get(FAULTS_ENV)),
            name="enclave-parse",
        )
        proc.daemon = True
        proc.start()
        child.close()
        slot.process, slot.conn, slot.done = proc, parent, 0

    def _stop(self, slot: _Slot, *, kill: bool) -> None:
        proc, conn = slot.process, slot.conn
        slot.process, slot.conn, slot.task_id = None, None, None
        if conn is not None:
            if not kill:
                with contextlib.suppress(OSError):
                    conn.send(None)
            conn.close()
        if proc is not None:
            if kill and proc.is_alive():
                proc.kill()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    # -- work --------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Files this pool works on at once."""
        return len(self._slots)

    def submit(
        self, task_id: int, path: Path, *, rel_path: str | None = None, sha256: str | None = None
    ) -> None:
        """Parse ``path`` in an idle worker (``rel_path``/``sha256`` name the file for pools
        that need it; a local parser reads the path)."""
        slot = next(s for s in self._slots if s.task_id is None)
        if slot.process is not None and slot.done >= self._max_tasks:
            self._stop(slot, kill=False)
        if slot.process is None or not slot.process.is_alive():
            self._stop(slot, kill=True)
            self._start(slot)
        assert slot.conn is not None
        slot.conn.send((task_id, str(path)))
        slot.task_id, slot.started = task_id, time.monotonic()

    def poll(self, timeout: float) -> list[ParseOutcome]:
        """Results that are ready within ``timeout`` seconds (timeouts and crashes included)."""
        busy = [s for s in self._slots if s.task_id is not None]
        if not busy:
            return []
        now = time.monotonic()
        next_deadline = min(s.started + self._timeout for s in busy)
        waitables: list[Any] = [s.conn for s in busy]
        waitables += [s.process.sentinel for s in busy if s.process is not None]
        ready = set(wait(waitables, timeout=max(0.0, min(timeout, next_deadline - now))))
        out: list[ParseOutcome] = []
        for slot in busy:
            outcome = self._collect(slot, ready)
            if outcome is not None:
                out.append(outcome)
        return out

    def _collect(self, slot: _Slot, ready: set[Any]) -> ParseOutcome | None:
        assert slot.conn is not None and slot.process is not None and slot.task_id is not None
        task_id = slot.task_id
        if slot.conn in ready:
            try:
                msg = slot.conn.recv()
            except (EOFError, OSError):
                return self._crashed(slot, task_id)
            kind = msg[0]
            if kind == "fatal":
                self._stop(slot, kill=True)
                raise ParserUnavailableError(f"the document parser cannot start: {msg[1]}")
            if kind == "started":
                slot.started = time.monotonic()
                return None
            slot.task_id = None
            slot.done += 1
            if kind == "ok":
                return ParseOutcome(task_id, list(msg[2]))
            return ParseOutcome(task_id, None, str(msg[2]), str(msg[3]))
        if slot.process.sentinel in ready:
            return self._crashed(slot, task_id)
        if time.monotonic() - slot.started >= self._timeout:
            self._stop(slot, kill=True)
            return ParseOutcome(
                task_id,
                None,
                TIMEOUT,
                f"parsing took longer than ingest.parse_timeout_s = {self._timeout:g} s; "
                "the parser was stopped",
            )
        return None

    def _crashed(self, slot: _Slot, task_id: int) -> ParseOutcome:
        assert slot.process is not None
        slot.process.join(timeout=5)
        code = slot.process.exitcode
        self._stop(slot, kill=True)
        if code is not None and code < 0:
            how = f"signal {signal.Signals(-code).name}"
        else:
            how = f"exit code {code}"
        return ParseOutcome(
            task_id, None, WORKER_CRASHED, f"the parser process died ({how}) on this file"
        )

    def close(self) -> None:
        for slot in self._slots:
            self._stop(slot, kill=slot.task_id is not None)


def stop_parser_server() -> None:
    """Stop the forkserver that parse workers are forked from, and reap finished children.

    The forkserver keeps every parser library imported (about 470 MB resident, measured) for
    the life of the process that started it. A process that exits after its sync (the
    ``ingest`` CLI) does not care; a long-lived one (the UI, which syncs from its admin page)
    calls this after each sync, and the next sync starts a fresh server (a few seconds).
    Only call it when no :class:`ParsePool` is in use. multiprocessing has no public call for
    this: ``ForkServer._stop`` and ``ResourceTracker._stop`` exist since Python 3.8 (its own
    tests use them); when they are missing nothing is stopped."""
    from multiprocessing import forkserver, resource_tracker

    mp.active_children()  # joins (reaps) children that have exited
    for owner in (
        getattr(forkserver, "_forkserver", None),
        getattr(resource_tracker, "_resource_tracker", None),
    ):
        stop = getattr(owner, "_stop", None)
        if stop is not None:
            with contextlib.suppress(OSError, ChildProcessError):
                stop()
