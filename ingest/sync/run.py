"""``run_sync``: bring the index in line with one source, incrementally and crash-safely.

A source is a local or mounted tree or an SMB share (``smb://server/share/path``), read through
the :class:`~ingest.sources.base.Source` seam. Order of a run (design notes in docs/ingest.md):

1. take the store's sync lock (:mod:`ingest.sync.lock`), open the source and the index, record
   a run row;
2. repair after an interrupted run: drop points no ``ok`` row accounts for (orphans), and
   redo documents the state marks ``indexing``/``deleting`` (the planner does that);
3. stream the diff (:mod:`ingest.sync.plan`): unchanged files cost a ``stat`` and a batched row
   lookup; new/changed files are parsed in worker processes (:mod:`ingest.parsing.workers`),
   embedded here in batches and written in crash-safe groups (:mod:`ingest.sync.writer`);
4. delete the documents whose files are gone (a document's row goes ``deleting`` first),
   including what was indexed below a folder the SMB service account may no longer list;
   files below a local directory the walk could not list are kept, their access recomputed
   from the rules (:meth:`~ingest.sync.cleanup.Cleanup.delete_missing`);
5. record the run's counters, write a ``sync_run`` audit record (completed or failed) and
   release the lock.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from core.db import session_scope
from core.errors import (
    EmbeddingChangedError,
    RootEmptyError,
    SourceArgumentError,
    SyncCancelledError,
    SyncInProgressError,
)
from core.settings import Settings
from ingest.encoding.base import Embedder
from ingest.index import open_index
from ingest.index.base import VectorIndex
from ingest.parsing.workers import ParsePool
from ingest.sources import check_root, open_source
from ingest.sources.base import UNLISTABLE, Source
from ingest.sync.cleanup import Cleanup
from ingest.sync.lock import SyncLock, store_identity
from ingest.sync.permissions import PermissionResolver
from ingest.sync.pipeline import FilePool, Pipeline
from ingest.sync.plan import Planner
from ingest.sync.state import (
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_RUNNING,
    FileRow,
    IndexMetaRow,
    SyncRunRow,
    open_state,
    source_id_for,
    utcnow,
)
from ingest.sync.summary import FileIssue, SyncSummary
from ingest.sync.writer import Writer
from policies import aclstore
from policies.access import AccessRules
from policies.directory import load_directory
from policies.readers import nt_policy_for
from policies.service import PolicyService

if TYPE_CHECKING:
    from ingest.distributed.pool import DistributedPool

__all__ = ["SyncProgress", "SyncSummary", "check_root", "run_sync"]


EMBED_POOL_BATCHES = 8


@dataclass(frozen=True)
class SyncProgress:
    """Handed to the ``progress`` callback a few times per second."""

    phase: str  # "repair", "sync", "delete", "done"
    scanned: int
    processed: int
    chunks: int
    in_flight: int
    path: str | None = None


ProgressFn = Callable[[SyncProgress], None]


def check_source_name(source: str) -> str:
    name = source.strip()
    if not name or len(name) > 200 or any(not c.isprintable() for c in name):
        raise SourceArgumentError(
            f"--source {source!r}: give a short printable name (1-200 characters) for this root"
        )
    return name


def run_sync(
    settings: Settings,
    root: Path | str,
    source: str,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    *,
    retry_failed: bool = False,
    force: bool = False,
    allow_empty_root: bool = False,
    index: VectorIndex | None = None,
    policies: PolicyService | None = None,
    actor: str | None = None,
) -> SyncSummary:
    """Sync ``root`` into the index as source ``source``; return what changed.

    ``index``: an index the caller already holds open (the UI process owns the embedded store
    and syncs through its own handle); it is used as is and not closed here. ``policies``: whose
    audit log the ``sync_run`` record goes to (default: built from the settings, which also
    migrates the policies tables the ACL facts live in); ``actor``: who started the sync
    (default ``sync:<operating system login>``).

    Raises :class:`SyncInProgressError` when another sync holds the store,
    :class:`~core.errors.StoreLockedError` when another process holds the embedded store,
    and other :class:`~core.errors.EnclaveError` s with codes for bad input."""
    name = check_source_name(source)
    if not str(root).lower().startswith("smb://"):
        root = check_root(Path(root))
    rules = AccessRules.load(settings.access_rules)
    if policies is None:
        policies = PolicyService.from_settings(settings)
    engine = open_state(settings.db_url)
    lock = SyncLock(engine, store_identity(settings), name)
    previous = lock.acquire()
    try:
        files = open_source(settings, root)
        try:
            own_index = index is None
            if index is None:
                index = open_index(settings)
            try:
                run = _Run(
                    settings=settings,
                    engine=engine,
                    index=index,
                    lock=lock,
                    files=files,
                    source=name,
                    rules=rules,
                    workers=workers if workers is not None else settings.ingest.workers,
                    progress=progress,
                    policies=policies,
                    actor=actor or f"sync:{getpass.getuser()}",
                )
                return run.execute(
                    took_over=previous is not None,
                    retry_failed=retry_failed,
                    force=force,
                    allow_empty_root=allow_empty_root,
                )
            finally:
                if own_index:
                    index.close()
        finally:
            files.close()
    finally:
        lock.release()


class _Run:
    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        index: VectorIndex,
        lock: SyncLock,
        files: Source,
        source: str,
        rules: AccessRules,
        workers: int,
        progress: ProgressFn | None,
        policies: PolicyService,
        actor: str,
    ) -> None:
        self.settings = settings
        self.policies = policies
        self.actor = actor
        self.engine = engine
        self.index = index
        self.lock = lock
        self.store_key = lock.store_key
        self.files = files
        self.root = files.root
        self.source = source
        self.rules = rules
        self.workers = max(1, workers)
        self.progress = progress
        self._embedder: Embedder | None = None
        self._embedder_ready = False
        self.summary = SyncSummary(source=source)
        self._last_progress = 0.0
        self._pipeline: Pipeline | None = None
        self._scanned: Callable[[], int] = lambda: 0
        self._renamed_from: set[str] = set()
        self._distributed: DistributedPool | None = None

    # -- embedder + collection -----------------------------------------------------------------
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from ingest.encoding.embed import load_embedder

            self._embedder = load_embedder(self.settings.embedding, self.settings.models_dir)
        if not self._embedder_ready:
            self._check_meta(self._embedder.dim)
            self._embedder_ready = True
        return self._embedder

    def _load_embedder_in_background(self) -> None:
        """Load the model while the parser workers start (both take seconds)."""
        if self._embedder is not None:
            return
        from ingest.encoding.embed import load_embedder

        def load() -> None:
            with contextlib.suppress(Exception):  # the main thread's own load reports errors
                load_embedder(self.settings.embedding, self.settings.models_dir)

        threading.Thread(target=load, name="embedder-preload", daemon=True).start()

    def _check_meta(self, dim: int | None) -> None:
        """Refuse a model or dimension switch on an existing index; make sure the collection
        exists (its dimension comes from the first embedder seen)."""
        from ingest.encoding.embed import same_model

        model = self.settings.embedding.model
        for attempt in range(2):
            try:
                with session_scope(self.engine) as s:
                    meta = s.get(IndexMetaRow, self.store_key)
                    if meta is not None and not same_model(meta.embedding_model, model):
                        raise EmbeddingChangedError(
                            f"this index was built with embedding model {meta.embedding_model!r}"
                            f" but the config says {model!r}; vectors of two models cannot be "
                            "mixed. Sync into a new data dir (or index collection), or set "
                            "embedding.model back."
                        )
                    if meta is not None and dim is not None and meta.dim != dim:
                        raise EmbeddingChangedError(
                            f"this index was built with {meta.dim}-dimensional vectors of "
                            f"{meta.embedding_model!r} but the embedder now gives {dim} "
                            "dimensions (a different model behind the same name?); vectors "
                            "cannot be mixed"
                        )
                    if meta is None and dim is not None:
                        s.add(
                            IndexMetaRow(store_key=self.store_key, embedding_model=model, dim=dim)
                        )
                    known = meta.dim if meta is not None else dim
                break
            except IntegrityError:  # a sync of another source recorded it at the same moment
                if attempt:
                    raise
        if known is not None:
            self.index.ensure_collection(known)

    # -- the run -------------------------------------------------------------------------------
    def execute(
        self, *, took_over: bool, retry_failed: bool, force: bool, allow_empty_root: bool
    ) -> SyncSummary:
        started = time.monotonic()
        self._check_meta(None)
        if self.settings.embedding.backend == "openai" and self.settings.ingest.broker_url is None:
            self.embedder()  # a server: check now that it serves the index's model and dimension
        with session_scope(self.engine) as s:
            self.source_id = source_id_for(s, self.source, self.root)
            s.execute(
                update(SyncRunRow)
                .where(
                    SyncRunRow.store_key == self.store_key,
                    SyncRunRow.source_id == self.source_id,
                    SyncRunRow.status == RUN_RUNNING,
                )
                .values(status=RUN_INTERRUPTED, finished_at=utcnow())
            )
            last = s.scalar(
                select(SyncRunRow)
                .where(SyncRunRow.source_id == self.source_id)
                .order_by(SyncRunRow.id.desc())
                .limit(1)
            )
            needs_repair = took_over or last is None or last.status != RUN_COMPLETED
            run = SyncRunRow(
                source_id=self.source_id,
                store_key=self.store_key,
                status=RUN_RUNNING,
                started_at=utcnow(),
                pid=os.getpid(),
                host=socket.gethostname(),
                workers=self.workers,
                counters="{}",
            )
            s.add(run)
            s.flush()
            self.run_id = run.id
        self.summary.run_id = self.run_id
        self.lock.set_run(self.run_id)
        try:
            cleanup = Cleanup(
                self.engine, self.index, self.source, self.source_id, self.summary, self.files
            )
            cleanup.rebuild_if_index_lost()
            if needs_repair:
                self._report("repair", 0, None, force_emit=True)
                cleanup.remove_orphans()
            directory = load_directory(self.settings)
            planner = Planner(
                self.engine,
                files=self.files,
                source=self.source,
                resolver=PermissionResolver(
                    self.rules,
                    self.source,
                    resolver=directory,
                    nt_policy=nt_policy_for(self.settings.smb, directory),
                ),
                max_file_bytes=int(self.settings.ingest.max_file_mb * 1_000_000),
                retry_failed=retry_failed,
                force=force,
            )
            self._sync(planner)
            if planner.walked == 0 and not allow_empty_root and self._has_files():
                raise RootEmptyError(
                    f"the source root {self.root} is empty but source '{self.source}' has "
                    "indexed files: refusing to delete them all (an unmounted share looks "
                    "like this). Pass --allow-empty-root if the files really are gone."
                )
            for d in planner.unlistable:
                self.summary.add_unlistable(FileIssue(d.rel_dir or ".", UNLISTABLE, d.message))
            self._report("delete", 0, None, force_emit=True)
            cleanup.delete_missing(
                self.run_id, planner.unreadable_dirs, self._renamed_from, planner.resolver
            )
            if self.summary.deleted or self.summary.renamed:
                self._forget_facts_of_gone_files()
            if self.summary.chunks:
                self.index.optimize()
        except BaseException as exc:
            self._finish(
                RUN_INTERRUPTED
                if isinstance(exc, KeyboardInterrupt | SyncCancelledError)
                else RUN_FAILED,
                started,
                exc,
            )
            raise
        self._finish(RUN_COMPLETED, started, None)
        self._report("done", 0, None, force_emit=True)
        return self.summary

    def _finish(self, status: str, started: float, exc: BaseException | None) -> None:
        self.summary.seconds = time.monotonic() - started
        code = getattr(exc, "code", None) if exc is not None else None
        message = (getattr(exc, "message", None) or str(exc) or type(exc).__name__) if exc else None
        try:
            with session_scope(self.engine) as s:
                s.execute(
                    update(SyncRunRow)
                    .where(SyncRunRow.id == self.run_id)
                    .values(
                        status=status,
                        finished_at=utcnow(),
                        seconds=self.summary.seconds,
                        counters=json.dumps(self.summary.counters()),
                        error_code=(code or ("ingest.error" if exc else None)),
                        error_message=message[:4000] if message else None,
                    )
                )
        except Exception:
            if exc is None:
                raise
        self._audit(status, code or ("ingest.error" if exc else None), message, exc)

    def _audit(
        self, status: str, code: str | None, message: str | None, exc: BaseException | None
    ) -> None:
        """The run's ``sync_run`` audit record (who, which source, how it ended, counters)."""
        sm = self.summary
        details = {
            "source": self.source,
            "root": str(self.root),
            "run_id": self.run_id,
            "status": status,
            "counters": sm.counters(),
            "error_code": code,
            "error_message": message[:500] if message else None,
            "rules_version": self.rules.version,
            "unlistable": [i.as_dict() for i in sm.unlistable[:50]],
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        try:
            self.policies.audit.append(
                "sync_run",
                user_id=self.actor,
                policy_version=self.policies.version,
                latency_ms=sm.seconds * 1000,
                details=details,
            )
        except Exception:
            if exc is None:
                raise  # a sync that cannot be audited is not done

    def _forget_facts_of_gone_files(self) -> None:
        with session_scope(self.engine) as s:
            known = set(
                s.scalars(select(FileRow.rel_path).where(FileRow.source_id == self.source_id))
            )
            gone = [p for p in aclstore.paths_of(s, self.source) if p not in known]
            aclstore.forget(s, self.source, gone)

    def _has_files(self) -> bool:
        with session_scope(self.engine) as s:
            n = s.scalar(
                select(func.count()).select_from(FileRow).where(FileRow.source_id == self.source_id)
            )
        return bool(n)

    # -- sync loop -----------------------------------------------------------------------------
    def _sync(self, planner: Planner) -> None:
        writer = Writer(
            engine=self.engine,
            index=self.index,
            source=self.source,
            source_id=self.source_id,
            run_id=self.run_id,
            summary=self.summary,
            group_chunks=self.settings.ingest.commit_chunks,
        )
        self._scanned = lambda: planner.walked
        pool_factory, capacity, preload = self._pool()
        pipeline = Pipeline(
            items=planner.items(),
            writer=writer,
            pool_factory=pool_factory,
            capacity=capacity,
            embed_pool=EMBED_POOL_BATCHES * max(1, self.settings.embedding.batch_size),
            embed_fn=lambda: self.embedder().embed_documents,
            on_first_parse=preload,
            tick=lambda in_flight, entry: self._report("sync", in_flight, entry),
            on_vectors=self._check_meta,
        )
        self._pipeline = pipeline
        try:
            pipeline.run(self._check_lock)
        finally:
            self._renamed_from = writer.renamed_from
            if self._distributed is not None:
                self.summary.distributed = self._distributed.stats.as_dict()

    def _pool(self) -> tuple[Callable[[], FilePool], int, Callable[[], None]]:
        """``(factory, capacity, on first parse)``: local parser processes by default,
        distributed workers when a broker is configured (they embed too)."""
        ing = self.settings.ingest
        if ing.broker_url is None:
            return (
                lambda: ParsePool(ing, self.workers),
                self.workers,
                self._load_embedder_in_background,
            )

        def distributed() -> FilePool:
            from ingest.distributed.pool import DistributedPool

            self._distributed = DistributedPool(
                self.settings, channel=self.lock.key, dim=self._known_dim()
            )
            return self._distributed

        return distributed, ing.tasks_in_flight * ing.task_files, lambda: None

    def _known_dim(self) -> int | None:
        with session_scope(self.engine) as s:
            meta = s.get(IndexMetaRow, self.store_key)
            return meta.dim if meta is not None else None

    def _check_lock(self) -> None:
        if self.lock.lost:
            raise SyncInProgressError(
                "this sync lost its lock (its heartbeat stalled and another sync took over); "
                "stopping without further writes"
            )

    # -- progress ------------------------------------------------------------------------------
    def _report(
        self, phase: str, in_flight: int, entry: object, *, force_emit: bool = False
    ) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force_emit and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        path = getattr(entry, "rel_path", None)
        self.progress(
            SyncProgress(
                phase=phase,
                scanned=self._scanned(),
                processed=self._pipeline.processed if self._pipeline else 0,
                chunks=self.summary.chunks,
                in_flight=in_flight,
                path=path,
            )
        )
