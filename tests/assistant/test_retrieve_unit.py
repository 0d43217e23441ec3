"""Retriever logic without an engine (fakes for speed; the real engine is in test_acl_paths)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.retrieve import Retriever, diversify
from core.settings import RetrievalSettings
from ingest.model import Hit, SparseVector
from policies.identity import Principal


def _hit(i: int, doc: str, score: float) -> Hit:
    return Hit(id=f"p{i}", score=score, payload={"doc_id": doc, "path": f"{doc}.md", "text": "t"})


def test_diversify_caps_chunks_per_file_and_keeps_order() -> None:
    hits = [
        _hit(1, "a", 0.9),
        _hit(2, "a", 0.8),
        _hit(3, "a", 0.7),
        _hit(4, "b", 0.6),
        _hit(5, "c", 0.5),
        _hit(6, "a", 0.4),
    ]
    assert [h.id for h in diversify(hits, k=4, max_per_doc=2)] == ["p1", "p2", "p4", "p5"]
    assert [h.id for h in diversify(hits, k=2, max_per_doc=1)] == ["p1", "p4"]


class FakeIndex:
    def __init__(self, dense_score: float) -> None:
        self.calls: list[dict[str, Any]] = []
        self.dense_score = dense_score

    def search(self, **kw: Any) -> list[Hit]:
        self.calls.append(kw)
        if kw["mode"] == "dense":
            return [_hit(9, "z", self.dense_score)][: kw["limit"]]
        return [_hit(1, "a", 0.03), _hit(2, "a", 0.02), _hit(3, "a", 0.01), _hit(4, "b", 0.01)]


class FakeEmbedder:
    """Speaks the Embedder protocol with one fixed vector (the real model: tests/encoding)."""

    model_id = "fake"
    dim = 2

    def warm_up(self) -> None:
        pass

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]


def _retriever(index: FakeIndex) -> Retriever:
    cfg = RetrievalSettings(k=3, max_chunks_per_doc=2)
    return Retriever(index, FakeEmbedder(), cfg, lambda q: SparseVector([1], [1.0]))  # type: ignore[arg-type]


def test_groupless_principal_never_reaches_the_index() -> None:
    idx = FakeIndex(0.9)
    res = _retriever(idx).search("q", Principal(user_id="u", groups=frozenset()))
    assert res.chunks == [] and res.relevance == 0.0 and idx.calls == []


def test_relevance_is_the_best_dense_score() -> None:
    who = Principal(user_id="u", groups=frozenset({"g"}))
    low = _retriever(FakeIndex(0.3)).search("q", who)
    assert low.relevance == 0.3 and len(low.chunks) == 3
    high = _retriever(FakeIndex(0.6)).search("q", who)
    assert high.relevance == 0.6
    assert [c.path for c in high.chunks] == ["a.md", "a.md", "b.md"]
    assert [c.rank for c in high.chunks] == [1, 2, 3]
