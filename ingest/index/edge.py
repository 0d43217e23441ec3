"""Qdrant Edge backend: the Qdrant engine in-process (``qdrant-edge-py``, pinned: beta API).

One shard directory per collection under the index dir. The engine supports everything the
contract needs natively: named dense + sparse vectors, the IDF modifier on the sparse vector,
keyword payload indexes, and prefetch + RRF/DBSF fusion in ``query`` — so hybrid fusion runs in
the engine here exactly as on the server.

The store is single-process: :class:`~ingest.index.lock.StoreLock` is taken before the shard is
opened and a second process gets :class:`~core.errors.StoreLockedError`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from core.errors import (
    DimensionMismatchError,
    NoCollectionError,
    StoreLockedError,
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
from ingest.index.lock import StoreLock, locked_message
from ingest.model import ChunkPoint, Hit, SparseVector

_CONFIG_FILE = "edge_config.json"


def _engine_error(exc: Exception, path: Path) -> VectorIndexError:
    text = str(exc)
    if "WouldBlock" in text:
        return StoreLockedError(locked_message(path, None))
    return VectorIndexError(f"Qdrant Edge failed on {path}: {text}")


class EdgeIndex:
    """:class:`~ingest.index.base.VectorIndex` on a Qdrant Edge shard at ``path``."""

    def __init__(self, path: Path, *, scoped_idf: bool = True) -> None:
        self.path = Path(path)
        self.scoped_idf = scoped_idf
        self._lock = StoreLock(self.path.with_name(self.path.name + ".lock"), self.path)
        self._lock.acquire()
        self._mutex = threading.Lock()  # guards open/close/create, not queries
        self._shard: qe.EdgeShard | None = None
        self._dim: int | None = None
        try:
            if (self.path / _CONFIG_FILE).exists():
                self._shard = qe.EdgeShard.load(str(self.path))
                self._dim = _stored_dim(self.path)
        except Exception as exc:
            self._lock.release()
            raise _engine_error(exc, self.path) from exc

    # -- lifecycle -------------------------------------------------------------------------
    def ensure_collection(self, dense_dim: int) -> None:
        with self._mutex:
            if self._shard is not None:
                if self._dim != dense_dim:
                    raise DimensionMismatchError(
                        f"the index at {self.path} holds {self._dim}-d vectors but the embedder "
                        f"makes {dense_dim}-d ones: the embedding model changed. Move the index "
                        "dir away (or point index to a new collection) and sync again."
                    )
                self._ensure_payload_indexes(self._shard)
                return
            config = qe.EdgeConfig(
                vectors={
                    DENSE_VECTOR: qe.EdgeVectorParams(size=dense_dim, distance=qe.Distance.Cosine)
                },
                sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            )
            try:
                shard = qe.EdgeShard.create(str(self.path), config)
            except Exception as exc:
                raise _engine_error(exc, self.path) from exc
            self._ensure_payload_indexes(shard)
            shard.flush()
            self._shard, self._dim = shard, dense_dim

    def _ensure_payload_indexes(self, shard: qe.EdgeShard) -> None:
        present = set(shard.info().payload_schema)
        for field in KEYWORD_INDEXES:
            if field not in present:
                shard.update(
                    qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
                )

    def flush(self) -> None:
        if self._shard is not None:
            self._shard.flush()

    def optimize(self) -> None:
        if self._shard is not None:
            self._shard.optimize()

    def close(self) -> None:
        with self._mutex:
            shard, self._shard = self._shard, None
            try:
                if shard is not None:
                    shard.flush()
                    shard.close()
            finally:
                self._lock.release()

    def __enter__(self) -> EdgeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dim(self) -> int | None:
        return self._dim

    # -- writes ----------------------------------------------------------------------------
    def _writable(self) -> qe.EdgeShard:
        if self._shard is None:
            if not self._lock.held:
                raise VectorIndexError(f"the index at {self.path} is closed")
            raise NoCollectionError(
                f"no collection at {self.path} yet: call ensure_collection(dim) first"
            )
        return self._shard

    def upsert(self, points: Sequence[ChunkPoint]) -> None:
        if not points:
            return
        shard = self._writable()
        assert self._dim is not None
        check_points(points, self._dim)
        edge_points = [
            qe.Point(
                p.id,
                {
                    DENSE_VECTOR: list(p.dense),
                    SPARSE_VECTOR: qe.SparseVector(list(p.sparse.indices), list(p.sparse.values)),
                },
                dict(p.payload),
            )
            for p in points
        ]
        shard.update(qe.UpdateOperation.upsert_points(edge_points))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._writable().update(qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        if not ids:
            return
        problem = check_acl_payload(dict(payload))
        if problem is not None:
            raise VectorIndexError(f"set_payload: {problem}")
        self._writable().update(qe.UpdateOperation.set_payload(list(ids), dict(payload)))

    # -- reads -----------------------------------------------------------------------------
    def _scroll(
        self, flt: qe.Filter | None, with_payload: bool | list[str], with_vector: bool, batch: int
    ) -> Iterator[list[qe.Record]]:
        shard = self._shard
        if shard is None:
            return
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    limit=batch,
                    filter=flt,
                    with_payload=with_payload,
                    with_vector=with_vector,
                )
            )
            if records:
                yield records
            if offset is None:
                return

    def doc_point_ids(self, doc_id: str) -> set[str]:
        flt = qe.Filter(must=[qe.FieldCondition("doc_id", match=qe.MatchValue(doc_id))])
        return {str(r.id) for batch in self._scroll(flt, False, False, SCROLL_BATCH) for r in batch}

    def iter_doc_ids(self, source: str | None = None) -> Iterator[tuple[str, str]]:
        flt = (
            qe.Filter(must=[qe.FieldCondition("source", match=qe.MatchValue(source))])
            if source is not None
            else None
        )
        for batch in self._scroll(flt, ["doc_id"], False, SCROLL_BATCH):
            for r in batch:
                yield str(r.id), str((r.payload or {}).get("doc_id", ""))

    def get_points(self, ids: Sequence[str]) -> list[ChunkPoint]:
        if not ids or self._shard is None:
            return []
        return [_to_chunk(r) for r in self._shard.retrieve(list(ids), True, True)]

    def scroll_points(self, batch_size: int = 256) -> Iterator[list[ChunkPoint]]:
        for batch in self._scroll(None, True, True, batch_size):
            yield [_to_chunk(r) for r in batch]

    def count(self) -> int:
        if self._shard is None:
            return 0
        return int(self._shard.count(qe.CountRequest(exact=True)))

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
        shard = self._shard
        if shard is None:
            return []
        must: list[Any] = [qe.FieldCondition("allowed_groups", match=qe.MatchAny(allowed))]
        # deny wins: a chunk naming any of the caller's groups as denied is never returned
        must_not: list[Any] = [qe.FieldCondition("denied_groups", match=qe.MatchAny(allowed))]
        if sources is not None:
            if not sources:
                return []
            must.append(qe.FieldCondition("source", match=qe.MatchAny(list(sources))))
        flt = qe.Filter(must=must, must_not=must_not)
        # IDF over what this caller may read: hidden chunks do not move its lexical scores
        acl = qe.Filter(must=[must[0]], must_not=must_not)
        lex_params = qe.SearchParams(idf=qe.IdfParams(corpus=acl)) if self.scoped_idf else None
        dense_q = qe.Query.Nearest(list(dense), using=DENSE_VECTOR) if dense is not None else None
        sparse_q = (
            qe.Query.Nearest(
                qe.SparseVector(list(sparse.indices), list(sparse.values)), using=SPARSE_VECTOR
            )
            if sparse is not None
            else None
        )
        if mode == "hybrid":
            depth = candidates_for(limit, candidates)
            request = qe.QueryRequest(
                limit=limit,
                prefetches=[
                    qe.Prefetch(limit=depth, query=dense_q, filter=flt),
                    qe.Prefetch(limit=depth, query=sparse_q, filter=flt, params=lex_params),
                ],
                query=_fusion(fusion),
                filter=flt,
                with_payload=True,
            )
        else:
            request = qe.QueryRequest(
                limit=limit,
                query=dense_q if mode == "dense" else sparse_q,
                filter=flt,
                params=lex_params if mode == "lexical" else None,
                with_payload=True,
            )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in shard.query(request)]


def _fusion(fusion: Fusion) -> Any:
    # the stubs type Rrf/Dbsf as nested classes, not as the Fusion the engine accepts
    return qe.Fusion.Rrf(k=RRF_K) if fusion == "rrf" else qe.Fusion.Dbsf()


def _stored_dim(path: Path) -> int:
    data = json.loads((path / _CONFIG_FILE).read_text())
    return int(data["vectors"][DENSE_VECTOR]["size"])


def _to_chunk(record: qe.Record) -> ChunkPoint:
    vectors = record.vector if isinstance(record.vector, dict) else {}
    dense = vectors.get(DENSE_VECTOR)
    sparse = vectors.get(SPARSE_VECTOR)
    return ChunkPoint(
        id=str(record.id),
        dense=[float(x) for x in dense] if isinstance(dense, list) else [],  # type: ignore[arg-type]
        sparse=SparseVector(
            indices=list(sparse.indices) if isinstance(sparse, qe.SparseVector) else [],
            values=[float(v) for v in sparse.values] if isinstance(sparse, qe.SparseVector) else [],
        ),
        payload=dict(record.payload or {}),
    )
