"""The VectorIndex contract, run on Qdrant Edge and on qdrant-client's local mode."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import BadPointError, BadQueryError, DimensionMismatchError, NoCollectionError
from ingest.encoding.sparse import encode_query
from ingest.index import VectorIndex
from ingest.model import ChunkPoint, SparseVector
from tests.index import spy
from tests.index.conftest import DIM, EVERYONE, MODES, ask, by_path, chunk, unit


def describe(idx: Any) -> dict[str, Any]:
    """Schema as the engine reports it (backend-specific introspection)."""
    if hasattr(idx, "_shard"):
        cfg = json.loads((Path(idx.path) / "edge_config.json").read_text())
        return {
            "dim": cfg["vectors"]["dense"]["size"],
            "distance": cfg["vectors"]["dense"]["distance"].lower(),
            "idf": cfg["sparse_vectors"]["lexical"].get("modifier") == "idf",
            "keyword": set(idx._shard.info().payload_schema),
        }
    info = idx.client.get_collection(idx.collection)
    return {
        "dim": info.config.params.vectors["dense"].size,
        "distance": info.config.params.vectors["dense"].distance.value.lower(),
        "idf": info.config.params.sparse_vectors["lexical"].modifier == "idf",
        "keyword": set(info.payload_schema),
    }


# -- schema ------------------------------------------------------------------------------------
def test_collection_schema(opener: Callable[[], VectorIndex]) -> None:
    idx = opener()
    edge = hasattr(idx, "_shard")
    s = None if edge else spy.install(idx, None)  # Edge has no shard before ensure_collection
    try:
        idx.ensure_collection(DIM)
    finally:
        if s is not None:
            spy.uninstall(idx, s)
    d = describe(idx)
    assert d["dim"] == DIM and d["distance"] == "cosine" and d["idf"] is True
    if s is None:
        assert {"allowed_groups", "denied_groups", "doc_id", "source"} <= d["keyword"]
    else:  # local mode accepts payload indexes but does not report them: check the requests
        asked = {(c[1][1], c[1][2]) for c in s.calls if c[0] == "create_payload_index"}
        from qdrant_client import models

        assert asked == {
            (f, models.PayloadSchemaType.KEYWORD)
            for f in ("allowed_groups", "denied_groups", "doc_id", "source")
        }


def test_ensure_collection_is_idempotent_and_rejects_other_dim(index: VectorIndex) -> None:
    index.ensure_collection(DIM)
    assert index.count() == 8
    with pytest.raises(DimensionMismatchError, match="embedding model changed"):
        index.ensure_collection(DIM + 1)


def test_empty_store_reads_and_refuses_writes(opener: Callable[[], VectorIndex]) -> None:
    idx = opener()
    assert idx.count() == 0
    assert idx.search(groups=frozenset({"hr"}), dense=[1.0] + [0.0] * (DIM - 1), mode="dense") == []
    assert list(idx.iter_doc_ids()) == [] and idx.doc_point_ids("x") == set()
    with pytest.raises(NoCollectionError):
        idx.upsert(
            [chunk(random.Random(1), source="s", path="a", index=0, text="t", groups=["hr"])]
        )


# -- writes ------------------------------------------------------------------------------------
def test_upsert_roundtrip_and_idempotent_reupsert(
    index: VectorIndex, corpus: list[ChunkPoint]
) -> None:
    assert index.count() == len(corpus)
    index.upsert(corpus)
    index.upsert(corpus[:3])
    assert index.count() == len(corpus)
    stored = {p.id: p for batch in index.scroll_points(batch_size=3) for p in batch}
    assert set(stored) == {p.id for p in corpus}
    for p in corpus:
        got = stored[p.id]
        assert got.payload == p.payload
        assert got.dense == pytest.approx(p.dense, abs=1e-5)
        assert got.sparse.indices == p.sparse.indices
        assert got.sparse.values == pytest.approx(p.sparse.values, rel=1e-5)


def test_reupsert_replaces_content(index: VectorIndex, corpus: list[ChunkPoint]) -> None:
    p = corpus[2]
    changed = ChunkPoint(p.id, unit(random.Random(99)), p.sparse, {**p.payload, "text": "new text"})
    index.upsert([changed])
    hits = index.search(groups=frozenset({"eng"}), dense=changed.dense, mode="dense", limit=1)
    assert hits[0].id == p.id and hits[0].payload["text"] == "new text"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_delete_and_doc_ids(index: VectorIndex, corpus: list[ChunkPoint]) -> None:
    deploy = [p for p in corpus if p.payload["path"] == "eng/deploy.md"]
    doc_id = deploy[0].payload["doc_id"]
    assert index.doc_point_ids(doc_id) == {p.id for p in deploy}
    pairs = set(index.iter_doc_ids())
    assert pairs == {(p.id, p.payload["doc_id"]) for p in corpus}
    assert {pid for pid, _ in index.iter_doc_ids("wiki")} == {
        p.id for p in corpus if p.payload["source"] == "wiki"
    }
    index.delete([deploy[0].id])
    index.delete([deploy[0].id])  # deleting twice is harmless
    assert index.doc_point_ids(doc_id) == {deploy[1].id}
    assert index.count() == len(corpus) - 1
    hits = ask(index, deploy[0], frozenset({"eng"}), "hybrid", limit=20)
    assert deploy[0].id not in {h.id for h in hits}


def test_set_payload_changes_acl_without_reembedding(
    index: VectorIndex, corpus: list[ChunkPoint]
) -> None:
    salary = by_path(corpus, "hr/salaries.md")
    assert salary.id not in {h.id for h in ask(index, salary, frozenset({"eng"}), "dense")}
    index.set_payload([salary.id], {"allowed_groups": ["hr", "eng"]})
    assert ask(index, salary, frozenset({"eng"}), "dense", limit=1)[0].id == salary.id
    stored = {p.id: p for b in index.scroll_points() for p in b}[salary.id]
    assert stored.dense == pytest.approx(salary.dense, abs=1e-5)
    assert stored.payload["text"] == salary.payload["text"]  # other keys untouched
    index.set_payload([salary.id], {"allowed_groups": []})
    for mode in MODES:
        assert salary.id not in {h.id for h in ask(index, salary, EVERYONE, mode, limit=20)}


def test_bad_points_are_rejected_before_any_write(
    index: VectorIndex, corpus: list[ChunkPoint]
) -> None:
    rng = random.Random(3)
    good = chunk(rng, source="s", path="new.md", index=0, text="fresh", groups=["hr"])
    short = chunk(rng, source="s", path="new.md", index=1, text="x", groups=["hr"], dim=DIM - 1)
    no_acl = chunk(rng, source="s", path="new.md", index=2, text="y", groups=["hr"])
    del no_acl.payload["allowed_groups"]
    for bad in (short, no_acl):
        with pytest.raises(BadPointError):
            index.upsert([good, bad])
    assert index.count() == len(corpus)
    with pytest.raises(BadPointError, match="list of group names"):
        index.upsert(
            [ChunkPoint(good.id, good.dense, good.sparse, {**good.payload, "allowed_groups": "hr"})]
        )


# -- search ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_search_modes_find_the_matching_chunk(
    index: VectorIndex, corpus: list[ChunkPoint], mode: str
) -> None:
    target = by_path(corpus, "eng/deploy.md")
    hits = index.search(
        groups=frozenset({"eng"}),
        dense=target.dense,
        sparse=encode_query("blue green pipeline"),
        mode=mode,  # type: ignore[arg-type]
        limit=3,
    )
    assert hits and hits[0].id == target.id
    assert hits[0].payload["path"] == "eng/deploy.md" and hits[0].payload["page"] == 1
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_lexical_ranks_by_bm25(index: VectorIndex, corpus: list[ChunkPoint]) -> None:
    hits = index.search(
        groups=EVERYONE, sparse=encode_query("expense reports travel"), mode="lexical", limit=5
    )
    assert hits[0].payload["text"].startswith("Expense reports for travel")
    assert all(h.score > 0 for h in hits)


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_hybrid_fuses_both_arms(index: VectorIndex, corpus: list[ChunkPoint], fusion: str) -> None:
    dense_target = by_path(corpus, "eng/deploy.md", 1)  # rollback chunk by vector
    hits = index.search(
        groups=frozenset({"eng"}),
        dense=dense_target.dense,
        sparse=encode_query("reset password portal"),  # the IT chunk by words
        mode="hybrid",
        fusion=fusion,  # type: ignore[arg-type]
        limit=4,
    )
    ids = [h.id for h in hits]
    it_chunk = by_path(corpus, "it/passwords.md")
    assert dense_target.id in ids[:2] and it_chunk.id in ids[:2]


def test_sources_filter(index: VectorIndex, corpus: list[ChunkPoint]) -> None:
    it_chunk = by_path(corpus, "it/passwords.md")
    hits = ask(index, it_chunk, EVERYONE, "hybrid", limit=20, sources=["drive"])
    assert hits and all(h.payload["source"] == "drive" for h in hits)
    assert [h.id for h in ask(index, it_chunk, EVERYONE, "dense", sources=["wiki"])] == [
        it_chunk.id
    ]
    assert ask(index, it_chunk, EVERYONE, "dense", sources=[]) == []


def test_bad_queries_are_clear_errors(index: VectorIndex) -> None:
    with pytest.raises(BadQueryError, match="dense query vector"):
        index.search(groups=frozenset({"hr"}), sparse=encode_query("x"), mode="dense")
    with pytest.raises(BadQueryError, match="sparse"):
        index.search(groups=frozenset({"hr"}), dense=[0.1] * DIM, mode="hybrid")
    with pytest.raises(BadQueryError, match="dimensions"):
        index.search(groups=frozenset({"hr"}), dense=[0.1] * 3, mode="dense")
    with pytest.raises(BadQueryError, match="single string"):
        index.search(groups="hr", dense=[0.1] * DIM, mode="dense")  # type: ignore[arg-type]


def test_stopword_only_query(index: VectorIndex, corpus: list[ChunkPoint]) -> None:
    empty = encode_query("the and of")
    assert empty == SparseVector([], [])
    assert index.search(groups=EVERYONE, sparse=empty, mode="lexical") == []
    target = by_path(corpus, "all/handbook.md")
    hits = index.search(groups=EVERYONE, dense=target.dense, sparse=empty, mode="hybrid")
    assert hits[0].id == target.id  # the dense arm still answers


# -- durability --------------------------------------------------------------------------------
def test_data_survives_close_and_reopen(
    opener: Callable[[], VectorIndex], corpus: list[ChunkPoint]
) -> None:
    idx = opener()
    idx.ensure_collection(DIM)
    idx.upsert(corpus)
    idx.set_payload([corpus[0].id], {"classification": "secret"})
    idx.delete([corpus[1].id])
    idx.flush()
    idx.close()
    idx.close()  # idempotent
    again = opener()
    again.ensure_collection(DIM)
    assert again.count() == len(corpus) - 1
    hit = ask(again, corpus[0], frozenset({"hr"}), "hybrid", limit=1)[0]
    assert hit.id == corpus[0].id and hit.payload["classification"] == "secret"
