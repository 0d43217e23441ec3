"""Files first: every matching file gets a slot among the top k before any file gets a second."""

from __future__ import annotations

from assistant.retrieve import diversify
from ingest.model import Hit


def _hits(docs: str) -> list[Hit]:
    """One hit per letter, in rank order: "aab" = two chunks of file a, then one of file b."""
    return [
        Hit(id=f"p{i}", score=1.0 - i / 100, payload={"doc_id": d, "path": f"{d}.md"})
        for i, d in enumerate(docs)
    ]


def _ids(hits: list[Hit]) -> list[str]:
    return [h.id for h in hits]


def test_files_first_gives_five_files_where_the_cap_alone_gives_four() -> None:
    hits = _hits("aabcdef")
    assert _ids(diversify(hits, 5, 2)) == ["p0", "p1", "p2", "p3", "p4"]
    assert _ids(diversify(hits, 5, 2, files_first=True)) == ["p0", "p2", "p3", "p4", "p5"]


def test_files_first_fills_with_second_chunks_when_few_files_match() -> None:
    """A user who may read two files still gets k chunks (up to the per-file cap), rank order."""
    hits = _hits("aaabba")
    assert _ids(diversify(hits, 4, 2, files_first=True)) == ["p0", "p1", "p3", "p4"]
    assert _ids(diversify(hits, 5, 3, files_first=True)) == ["p0", "p1", "p2", "p3", "p4"]
    assert _ids(diversify(_hits("aaaa"), 3, 2, files_first=True)) == ["p0", "p1"]
    assert diversify([], 5, 2, files_first=True) == []


def test_more_holds_the_next_chunks_files_first_left_out() -> None:
    """The answerer also reads the second chunk of a page that files-first did not show."""
    from assistant.retrieve import Retriever
    from core.settings import RetrievalSettings
    from ingest.model import Hit, SparseVector
    from policies.identity import Principal

    ranked = [
        Hit(
            id=f"{doc}{n}",
            score=1.0 - i / 10,
            payload={"doc_id": doc, "path": f"{doc}.md", "text": "t"},
        )
        for i, (doc, n) in enumerate([("a", 1), ("a", 2), ("b", 1), ("c", 1), ("a", 3)])
    ]

    class Index:
        def search(self, **kw: object) -> list[Hit]:
            return ranked if kw.get("mode") != "dense" or kw.get("limit", 1) > 1 else ranked[:1]

    class Embedder:
        def embed_query(self, text: str) -> list[float]:
            return [1.0]

    cfg = RetrievalSettings(k=2, max_chunks_per_doc=2, files_first=True)
    r = Retriever(Index(), Embedder(), cfg, lambda q: SparseVector([1], [1.0]))  # type: ignore[arg-type]
    res = r.search("q", Principal(user_id="u", groups=frozenset({"g"})), extra=2)
    assert [c.chunk_id for c in res.chunks] == ["a1", "b1"]
    assert [c.chunk_id for c in res.more] == ["a2", "c1"]
    assert r.search("q", Principal(user_id="u", groups=frozenset({"g"}))).more == []
