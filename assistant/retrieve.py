"""Permission-aware hybrid retrieval.

Every search carries the asking principal's groups (and user id); the index adds the any-of
filter on ``allowed_groups`` and the none-of filter on ``denied_groups`` and returns nothing for
an empty set. A principal without groups gets
``[]`` before the index is touched (fail closed). There is no method here that searches
without a principal.

Ranking: the index fuses a dense (embedding) and a lexical (sparse BM25-style) search with RRF
or DBSF; we then keep at most ``max_chunks_per_doc`` chunks per file so one long file cannot
fill every slot, and (``files_first``) give each matching file one slot before any file gets a
second. ``relevance`` is the best dense cosine similarity among the chunks this user may read
(fused scores are rank-based and say nothing absolute); it is reported, not decided on:
whether the documents answer a question is the answerer's call, from sentence-level evidence
(:mod:`assistant.evidence`).
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
    mode: str
    timings: dict[str, float] = field(default_factory=dict)
    more: list[RetrievedChunk] = field(default_factory=list)
    """The next best chunks after ``chunks`` (``extra`` asked for), at most ``max_chunks_per_doc``
    per file and never filling a slot by files-first: the second chunk of a page that files-first
    left out is often the one that answers. Same ACL filter, same search."""


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


def diversify(
    hits: Sequence[Hit], k: int, max_per_doc: int, *, files_first: bool = False
) -> list[Hit]:
    """Top ``k`` hits with at most ``max_per_doc`` per ``doc_id`` (rank order kept).

    ``files_first``: the best chunk of each file fills the ``k`` slots first; further chunks of
    a file come in (best first, up to ``max_per_doc``) only when fewer than ``k`` files match.
    Five files give five chances that the page the question is about is among them, where a
    second chunk of the first file would take the slot of the fifth file."""
    seen: dict[str, int] = {}
    picked: list[int] = []
    for rounds in range(1, max_per_doc + 1) if files_first else (max_per_doc,):
        for i, hit in enumerate(hits):
            if len(picked) >= k:
                break
            doc = str(hit.payload.get("doc_id", hit.id))
            if i in picked or seen.get(doc, 0) >= rounds:
                continue
            seen[doc] = seen.get(doc, 0) + 1
            picked.append(i)
    return [hits[i] for i in sorted(picked)]


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
        extra: int = 0,
    ) -> RetrievalResult:
        import time

        mode = mode or self._settings.mode
        k = k or self._settings.k
        if not any(principal.groups) or not question.strip():
            return RetrievalResult([], 0.0, mode)
        # groups + the user's own id (a file's permissions may name the user alone, to deny)
        groups = frozenset(g for g in principal.access_ids if g)
        t0 = time.perf_counter()
        dense = self._embedder.embed_query(question)
        sparse = self._encode_query(question)
        t1 = time.perf_counter()
        limit = max(self._settings.candidates, k + extra)
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
        kept = diversify(
            ranked,
            k,
            self._settings.max_chunks_per_doc,
            files_first=self._settings.files_first,
        )
        chunks = [_to_chunk(h, i) for i, h in enumerate(kept, start=1)]
        more: list[RetrievedChunk] = []
        if extra:
            shown = {h.id for h in kept}
            pool = diversify(ranked, k + extra, self._settings.max_chunks_per_doc)
            rest = [h for h in pool if h.id not in shown][:extra]
            more = [_to_chunk(h, len(chunks) + i) for i, h in enumerate(rest, start=1)]
        return RetrievalResult(
            chunks=chunks,
            more=more,
            relevance=relevance,
            mode=mode,
            timings={"embed_s": t1 - t0, "search_s": t2 - t1},
        )
