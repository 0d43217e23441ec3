"""Qdrant server backend through ``qdrant-client`` (also its local mode, for tests and trials).

``url`` targets a Qdrant server or cluster (production: many processes share it). ``path`` opens
qdrant-client's local mode, which speaks the same API but is brute force in Python and, like
Edge, single-process: the same :class:`~ingest.index.lock.StoreLock` guards it, so a second
process gets the same :class:`~core.errors.StoreLockedError`.
"""

from __future__ import annotations

import math
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import (
    ClusterNotReadyError,
    DimensionMismatchError,
    IndexUnavailableError,
    NoCollectionError,
    ServerTooOldError,
    VectorIndexError,
)
from ingest.index.base import DENSE_VECTOR, SPARSE_VECTOR, Fusion, SearchMode
from ingest.index.common import (
    KEYWORD_INDEXES,
    RRF_K,
    SCROLL_BATCH,
    acl_groups,
    candidates_for,
    check_acl_payload,
    check_points,
    check_search,
)
from ingest.index.lock import StoreLock
from ingest.model import ChunkPoint, Hit, SparseVector

# The first Qdrant server release that applies a query's IDF corpus (``params.idf.corpus``,
# what ``scoped_idf`` sends). Older servers accept the request and silently compute IDF over
# the whole collection, hidden documents included.
MIN_SCOPED_IDF_VERSION = (1, 19, 0)


def parse_server_version(text: str) -> tuple[int, int, int]:
    """``"1.19.1"`` / ``"v1.19.1-dev"`` -> ``(1, 19, 1)``."""
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if m is None:
        raise VectorIndexError(f"cannot read the Qdrant server version {text!r}")
    major, minor, patch = (int(g) for g in m.groups())
    return major, minor, patch


def check_server_version(version: str, *, scoped_idf: bool, where: str) -> None:
    """Refuse a server that would silently widen lexical scoring beyond what a user may read."""
    if not scoped_idf:
        return
    if parse_server_version(version) < MIN_SCOPED_IDF_VERSION:
        need = ".".join(map(str, MIN_SCOPED_IDF_VERSION))
        raise ServerTooOldError(
            f"Qdrant at {where} is version {version}, which ignores the per-query IDF corpus "
            f"that index.scoped_idf needs (from {need}): lexical scores would count documents "
            f"the user may not read. Upgrade the server to {need} or later (or set "
            "index.scoped_idf = false and accept that side channel)."
        )


def wait_for_peers(
    peers: Callable[[], int | None],
    expected: int,
    *,
    timeout_s: float,
    where: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Poll ``peers()`` (the cluster's peer count, None when the server runs without cluster
    mode) until ``expected`` peers have joined; the count seen, or ClusterNotReadyError."""
    deadline = clock() + timeout_s
    while True:
        count = peers()
        if count is None:
            if expected > 1:
                raise ClusterNotReadyError(
                    f"Qdrant at {where} runs without cluster mode but index.expected_peers is "
                    f"{expected}: enable cluster mode or set index.expected_peers = 1"
                )
            return 1
        if count >= expected:
            return count
        if clock() >= deadline:
            raise ClusterNotReadyError(
                f"Qdrant at {where} has {count} of the {expected} peers index.expected_peers "
                f"asks for after {timeout_s:.0f} s: the collection is not created with fewer "
                "nodes (its shards would stay where they land). Check the Qdrant pods."
            )
        sleep(2.0)


class QdrantIndex:
    """:class:`~ingest.index.base.VectorIndex` on a Qdrant collection via qdrant-client."""

    def __init__(
        self,
        *,
        collection: str,
        url: str | None = None,
        api_key: str | None = None,
        path: Path | None = None,
        timeout_s: float = 10.0,
        scoped_idf: bool = True,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
        expected_peers: int = 1,
        peers_wait_s: float = 600.0,
    ) -> None:
        if (url is None) == (path is None):
            raise VectorIndexError(
                "QdrantIndex needs exactly one of url (server) or path (local mode)"
            )
        self.collection = collection
        self.scoped_idf = scoped_idf
        self.layout = {
            k: v
            for k, v in (
                ("shard_number", shard_number),
                ("replication_factor", replication_factor),
                ("write_consistency_factor", write_consistency_factor),
            )
            if v is not None
        }
        self.expected_peers = expected_peers
        self.peers_wait_s = peers_wait_s
        self.where = url if url is not None else str(path)
        self._lock: StoreLock | None = None
        self._mutex = threading.Lock()
        if path is not None:
            path = Path(path)
            self._lock = StoreLock(path.with_name(path.name + ".lock"), path)
            self._lock.acquire()
            try:
                self.client = QdrantClient(path=str(path))
            except Exception:
                self._lock.release()
                raise
        else:
            self.client = QdrantClient(
                url=url, api_key=api_key, timeout=max(1, math.ceil(timeout_s))
            )
        self._closed = False
        self._dim: int | None = None
        self._exists = False
        if url is not None:
            try:
                with self._engine():
                    version = self.client.info().version
                check_server_version(version, scoped_idf=scoped_idf, where=url)
            except Exception:
                self.client.close()
                raise
        self._refresh()

    def _peer_count(self) -> int | None:
        with self._engine():
            status = self.client.cluster_status()
        if not isinstance(status, models.ClusterStatusOneOf1):  # "disabled": no cluster mode
            return None
        return len(status.peers)

    @contextmanager
    def _engine(self) -> Iterator[None]:
        """Translate qdrant-client failures into Enclave errors naming the server."""
        if self._closed:
            raise VectorIndexError(f"the index at {self.where} is closed")
        try:
            yield
        except UnexpectedResponse as exc:
            raise IndexUnavailableError(
                f"Qdrant at {self.where} answered {exc.status_code}: {exc.content[:300]!r}"
            ) from exc
        except (ResponseHandlingException, ConnectionError, TimeoutError) as exc:
            raise IndexUnavailableError(
                f"Qdrant server at {self.where} is unreachable: {exc}. Check index.qdrant_url, "
                "the API key and that the server is running."
            ) from exc

    def _refresh(self) -> None:
        with self._engine():
            if not self.client.collection_exists(self.collection):
                return
            vectors = self.client.get_collection(self.collection).config.params.vectors
        if not isinstance(vectors, dict) or DENSE_VECTOR not in vectors:
            raise VectorIndexError(
                f"collection {self.collection!r} at {self.where} has no {DENSE_VECTOR!r} vector: "
                "it was not created by Enclave"
            )
        self._dim, self._exists = vectors[DENSE_VECTOR].size, True

    # -- lifecycle -------------------------------------------------------------------------
    def ensure_collection(self, dense_dim: int) -> None:
        with self._mutex:
            if not self._exists:
                self._refresh()
            if self._exists:
                if self._dim != dense_dim:
                    raise DimensionMismatchError(
                        f"collection {self.collection!r} at {self.where} holds {self._dim}-d "
                        f"vectors but the embedder makes {dense_dim}-d ones: the embedding model "
                        "changed. Use a new collection name and sync again."
                    )
            else:
                if self._lock is None and self.expected_peers > 1:  # a server, not local mode
                    wait_for_peers(
                        self._peer_count,
                        self.expected_peers,
                        timeout_s=self.peers_wait_s,
                        where=self.where,
                    )
                with self._engine():
                    self.client.create_collection(
                        self.collection,
                        vectors_config={
                            DENSE_VECTOR: models.VectorParams(
                                size=dense_dim, distance=models.Distance.COSINE
                            )
                        },
                        sparse_vectors_config={
                            SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                        },
                        **self.layout,  # type: ignore[arg-type]
                    )
                self._dim, self._exists = dense_dim, True
            with self._engine(), warnings.catch_warnings():
                # local mode warns that payload indexes have no effect there; the server uses them
                warnings.simplefilter("ignore")
                schema = self.client.get_collection(self.collection).payload_schema
                for field in KEYWORD_INDEXES:
                    if field not in schema:
                        self.client.create_payload_index(
                            self.collection, field, models.PayloadSchemaType.KEYWORD, wait=True
                        )

    def flush(self) -> None:
        """Nothing to do: the server acknowledges with ``wait=True`` after its WAL write, and
        local mode persists every update before returning."""

    def optimize(self) -> None:
        """Nothing to do: the server optimizes in the background."""

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                self.client.close()
            finally:
                if self._lock is not None:
                    self._lock.release()

    def __enter__(self) -> QdrantIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dim(self) -> int | None:
        return self._dim

    # -- writes ----------------------------------------------------------------------------
    def _need_collection(self) -> None:
        if not self._exists:
            raise NoCollectionError(
                f"no collection {self.collection!r} at {self.where} yet: call "
                "ensure_collection(dim) first"
            )

    def upsert(self, points: Sequence[ChunkPoint]) -> None:
        if not points:
            return
        self._need_collection()
        assert self._dim is not None
        check_points(points, self._dim)
        structs = [
            models.PointStruct(
                id=p.id,
                vector={
                    DENSE_VECTOR: list(p.dense),
                    SPARSE_VECTOR: models.SparseVector(
                        indices=list(p.sparse.indices), values=list(p.sparse.values)
                    ),
                },
                payload=dict(p.payload),
            )
            for p in points
        ]
        with self._engine():
            self.client.upsert(self.collection, structs, wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        self._need_collection()
        with self._engine():
            self.client.delete(self.collection, models.PointIdsList(points=list(ids)), wait=True)

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        if not ids:
            return
        self._need_collection()
        problem = check_acl_payload(dict(payload))
        if problem is not None:
            raise VectorIndexError(f"set_payload: {problem}")
        with self._engine():
            self.client.set_payload(self.collection, dict(payload), points=list(ids), wait=True)

    # -- reads -----------------------------------------------------------------------------
    def _scroll(
        self,
        flt: models.Filter | None,
        with_payload: bool | list[str],
        with_vectors: bool,
        batch: int,
    ) -> Iterator[list[models.Record]]:
        if not self._exists:
            return
        offset: Any = None
        while True:
            with self._engine():
                records, offset = self.client.scroll(
                    self.collection,
                    scroll_filter=flt,
                    limit=batch,
                    offset=offset,
                    with_payload=with_payload,
                    with_vectors=with_vectors,
                )
            if records:
                yield records
            if offset is None:
                return

    def doc_point_ids(self, doc_id: str) -> set[str]:
        flt = models.Filter(
            must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))]
        )
        return {str(r.id) for batch in self._scroll(flt, False, False, SCROLL_BATCH) for r in batch}

    def iter_doc_ids(self, source: str | None = None) -> Iterator[tuple[str, str]]:
        flt = (
            models.Filter(
                must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))]
            )
            if source is not None
            else None
        )
        for batch in self._scroll(flt, ["doc_id"], False, SCROLL_BATCH):
            for r in batch:
                yield str(r.id), str((r.payload or {}).get("doc_id", ""))

    def get_points(self, ids: Sequence[str]) -> list[ChunkPoint]:
        if not ids or not self._exists:
            return []
        with self._engine():
            records = self.client.retrieve(
                self.collection, list(ids), with_payload=True, with_vectors=True
            )
        return [_to_chunk(r) for r in records]

    def scroll_points(self, batch_size: int = 256) -> Iterator[list[ChunkPoint]]:
        for batch in self._scroll(None, True, True, batch_size):
            yield [_to_chunk(r) for r in batch]

    def count(self) -> int:
        if not self._exists:
            return 0
        with self._engine():
            return int(self.client.count(self.collection, exact=True).count)

    def search(
        self,
        *,
        groups: frozenset[str],
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        mode: SearchMode = "hybrid",
        limit: int = 10,
        fusion: Fusion = "rrf",
        sources: Sequence[str] | None = None,
        candidates: int | None = None,
    ) -> list[Hit]:
        allowed = acl_groups(groups)
        if not allowed:
            return []
        check_search(
            mode=mode, dense=dense, sparse=sparse, limit=limit, fusion=fusion, dim=self._dim
        )
        if not self._exists:
            self._refresh()
            if not self._exists:
                return []
        must: list[models.Condition] = [
            models.FieldCondition(key="allowed_groups", match=models.MatchAny(any=allowed))
        ]
        # deny wins: a chunk naming any of the caller's groups as denied is never returned
        must_not: list[models.Condition] = [
            models.FieldCondition(key="denied_groups", match=models.MatchAny(any=allowed))
        ]
        if sources is not None:
            if not sources:
                return []
            must.append(
                models.FieldCondition(key="source", match=models.MatchAny(any=list(sources)))
            )
        flt = models.Filter(must=must, must_not=must_not)
        # IDF over what this caller may read: hidden chunks do not move its lexical scores
        lex_params = (
            models.SearchParams(
                idf=models.IdfCorpusParams(corpus=models.Filter(must=[must[0]], must_not=must_not))
            )
            if self.scoped_idf
            else None
        )
        sparse_q = (
            models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
            if sparse is not None
            else None
        )
        with self._engine():
            if mode == "hybrid":
                depth = candidates_for(limit, candidates)
                fused: models.RrfQuery | models.FusionQuery = (
                    models.RrfQuery(rrf=models.Rrf(k=RRF_K))
                    if fusion == "rrf"
                    else models.FusionQuery(fusion=models.Fusion.DBSF)
                )
                response = self.client.query_points(
                    self.collection,
                    prefetch=[
                        models.Prefetch(
                            query=list(dense or []), using=DENSE_VECTOR, filter=flt, limit=depth
                        ),
                        models.Prefetch(
                            query=sparse_q,
                            using=SPARSE_VECTOR,
                            filter=flt,
                            limit=depth,
                            params=lex_params,
                        ),
                    ],
                    query=fused,
                    query_filter=flt,
                    limit=limit,
                    with_payload=True,
                )
            else:
                response = self.client.query_points(
                    self.collection,
                    query=list(dense or []) if mode == "dense" else sparse_q,
                    using=DENSE_VECTOR if mode == "dense" else SPARSE_VECTOR,
                    query_filter=flt,
                    search_params=lex_params if mode == "lexical" else None,
                    limit=limit,
                    with_payload=True,
                )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]


def _to_chunk(record: models.Record) -> ChunkPoint:
    vectors = record.vector if isinstance(record.vector, dict) else {}
    dense = vectors.get(DENSE_VECTOR)
    sparse = vectors.get(SPARSE_VECTOR)
    return ChunkPoint(
        id=str(record.id),
        dense=[float(x) for x in dense] if isinstance(dense, list) else [],  # type: ignore[arg-type]
        sparse=SparseVector(
            indices=list(sparse.indices) if isinstance(sparse, models.SparseVector) else [],
            values=list(sparse.values) if isinstance(sparse, models.SparseVector) else [],
        ),
        payload=dict(record.payload or {}),
    )
