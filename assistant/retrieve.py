"""Permission-aware hybrid retrieval.

Every search carries the asking principal's groups (and user id); the index adds the any-of
filter on ``allowed_groups`` and the none-of filter on ``denied_groups`` and returns nothing for
an empty set. A principal without groups gets
``[]`` before the index is touched (fail closed). There is no method here that searches
without a principal.

Ranking: the index fuses a dense (embedding) and a lexical (sparse BM25-style) search with RRF
or DBSF; we then keep at most ``max_chunks_per_doc`` chunks per file so one long file cannot
fill every slot. Relevance for abstaining is the best dense cosine similarity among the chunks
this user may read (fused RRF scores are rank-based and say nothing about relevance).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.types import RetrievedChunk
from core.settings import RetrievalSettings
from ingest.encoding.base import Embedder
from ingest.index.base import SearchMode, VectorIndex
from ingest.model import Hit, SparseVector
from policies.identity import Principal


@dataclass
class RetrievalResult:
    chunks: list[RetrievedChunk]
    relevance: float
    abstain: bool
    mode: str
    timings: dict[str, float] = field(default_factory=dict)


def _to_chunk(hit: Hit, rank: int) -> RetrievedChunk:
    p: dict[str, Any] = hit.payload
    page = p.get("page")
    return RetrievedChunk(
        chunk_id=hit.id,
        doc_id=str(p.get("doc_id", "")),
        path=str(p.get("path", "")),
        source=str(p.get("source", "")),
        section=p.get("section") or None,
        title=p.get("title") or None,
        page=int(page) if page is not None else None,
        text=str(p.get("text", "")),
        score=float(hit.score),
        rank=rank,
    )


def diversify(hits: Sequence[Hit], k: int, max_per_doc: int) -> list[Hit]:
    """Top ``k`` hits with at most ``max_per_doc`` per ``doc_id`` (order kept)."""
    seen: dict[str, int] = {}
    out: list[Hit] = []
    for hit in hits:
        doc = str(hit.payload.get("doc_id", hit.id))
        if seen.get(doc, 0) >= max_per_doc:
            continue
        seen[doc] = seen.get(doc, 0) + 1
        out.append(hit)
        if len(out) >= k:
            break
    return out


class Retriever:
    """Hybrid, ACL-filtered retrieval over a :class:`VectorIndex`."""

    def __init__(
        self,
        index: VectorIndex,
        embedder: Embedder,
        settings: RetrievalSettings,
        encode_query: Callable[[str], SparseVector],
    ) -> None:
        self._index = index
        self._embedder = embedder
        self._settings = settings
        self._encode_query = encode_query
        self._lock = threading.Lock()  # embedded engines are not documented as thread-safe

    @property
    def settings(self) -> RetrievalSettings:
        return self._settings

    def search(
        self,
        question: str,
        principal: Principal,
        *,
        k: int | None = None,
        mode: SearchMode | None = None,
        threshold: float | None = None,
    ) -> RetrievalResult:
        import time

        mode = mode or self._settings.mode
        k = k or self._settings.k
        threshold = self._settings.abstain_threshold if threshold is None else threshold
        if not any(principal.groups) or not question.strip():
            return RetrievalResult([], 0.0, True, mode)
        # groups + the user's own id (a file's permissions may name the user alone, to deny)
        groups = frozenset(g for g in principal.access_ids if g)
        t0 = time.perf_counter()
        dense = self._embedder.embed_query(question)
        sparse = self._encode_query(question)
        t1 = time.perf_counter()
        limit = max(self._settings.candidates, k)
        with self._lock:
            dense_hits = self._index.search(
                groups=groups, dense=dense, mode="dense", limit=limit if mode == "dense" else 1
            )
            if mode == "dense":
                ranked = dense_hits
            else:
                ranked = self._index.search(
                    groups=groups,
                    dense=dense if mode == "hybrid" else None,
                    sparse=sparse,
                    mode=mode,
                    limit=limit,
                    fusion=self._settings.fusion,
                )
        t2 = time.perf_counter()
        relevance = max((h.score for h in dense_hits), default=0.0)
        kept = diversify(ranked, k, self._settings.max_chunks_per_doc)
        chunks = [_to_chunk(h, i) for i, h in enumerate(kept, start=1)]
        return RetrievalResult(
            chunks=chunks,
            relevance=relevance,
            abstain=not chunks or relevance < threshold,
            mode=mode,
            timings={"embed_s": t1 - t0, "search_s": t2 - t1},
        )
