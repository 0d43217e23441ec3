"""Distributed ingestion: Celery workers with a Redis broker parse, chunk and embed; the syncing
process (the *coordinator*) plans and commits.

``ingest sync`` with ``ingest.broker_url`` set runs the same pipeline as without one
(:mod:`ingest.sync.pipeline`), but its parser pool is :class:`~ingest.distributed.pool.
DistributedPool`: files go, bytes included, in batches to ``ingest worker`` processes on any
machine, and come back as chunks with their dense and lexical vectors. The coordinator stays the
only writer of the index and of the state database, so the crash-safety steps of
:mod:`ingest.sync.writer` are unchanged and the embedded store works too (docs/ingest.md,
"Distributed workers", says why).

Delivery is at least once and effects happen once:

- Celery acknowledges a task after it ran (``acks_late``) and requeues it when its process
  dies (``reject_on_worker_lost``); a worker takes one task at a time (prefetch 1).
- The broker's visibility timeout is only a backstop (it must exceed the longest task, or a long
  task would run twice at once). Lost work is found by the coordinator: a running batch holds a
  lease in Redis that its worker refreshes; a batch whose lease vanished without all its results,
  or that stays without lease while nothing is queued, is sent again.
- Results go to a Redis stream of the sync (not to Celery's result backend), keyed by path,
  content hash and a fingerprint of the chunking and embedding settings. A result is used only
  while that file is in flight with that content; duplicates and stale results are dropped, and
  results a killed coordinator left behind are used by the next run.

Modules: :mod:`.keys` (Redis names), :mod:`.codec` (messages), :mod:`.app` (the Celery app),
:mod:`.worker` (the task), :mod:`.pool` (the coordinator's side).
"""
