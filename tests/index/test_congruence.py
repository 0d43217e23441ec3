"""Edge and qdrant-client (server API) agree on the same data; points migrate between them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.encoding.sparse import encode_query
from ingest.index import VectorIndex, open_index
from ingest.model import ChunkPoint
from tests.index.data import chunk, settings_for, unit

DIM = 32
_VOCAB = (
    "policy travel expense laptop vpn password salary bonus review deploy release incident "
    "backup office holiday leave security badge contract vendor invoice budget audit training"
)
WORDS = _VOCAB.split()
GROUP_SETS: tuple[list[str], ...] = (["hr"], ["eng"], ["eng", "hr"], ["finance"], ["it", "eng"], [])


def synthetic(n: int, seed: int) -> list[ChunkPoint]:
    rng = random.Random(seed)
    points = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
        points.append(
            chunk(
                rng,
                source=rng.choice(["a", "b"]),
                path=f"f{i // 3}.md",
                index=i % 3,
                text=text,
                groups=rng.choice(GROUP_SETS),
                dim=DIM,
            )
        )
    return points


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[VectorIndex, VectorIndex]]:
    edge = open_index(settings_for("edge", tmp_path / "e"))
    local = open_index(settings_for("local", tmp_path / "l"))
    yield edge, local
    edge.close()
    local.close()


def test_same_data_same_top_ids(pair: tuple[VectorIndex, VectorIndex]) -> None:
    edge, local = pair
    points = synthetic(600, seed=1)
    for idx in pair:
        idx.ensure_collection(DIM)
        idx.upsert(points)
    rng = random.Random(2)
    groups = frozenset({"eng"})
    for _ in range(20):
        q = unit(rng, DIM)
        a = edge.search(groups=groups, dense=q, mode="dense", limit=10)
        b = local.search(groups=groups, dense=q, mode="dense", limit=10)
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)
    for _ in range(10):
        sq = encode_query(" ".join(rng.sample(WORDS, 3)))
        a = edge.search(groups=groups, sparse=sq, mode="lexical", limit=10)
        b = local.search(groups=groups, sparse=sq, mode="lexical", limit=10)
        # identical BM25 (IDF on the engine): same scores; ids equal up to ties
        assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-4)
        assert {h.id for h in a if h.score > a[-1].score} == {
            h.id for h in b if h.score > b[-1].score
        }


def test_scroll_points_migrates_edge_to_server_api(pair: tuple[VectorIndex, VectorIndex]) -> None:
    edge, local = pair
    points = synthetic(700, seed=3)
    edge.ensure_collection(DIM)
    edge.upsert(points)
    local.ensure_collection(DIM)
    batches = list(edge.scroll_points(batch_size=256))
    assert [len(b) for b in batches] == [256, 256, 188]
    for batch in batches:
        local.upsert(batch)
    assert local.count() == edge.count() == 700
    assert set(local.iter_doc_ids()) == set(edge.iter_doc_ids())
    rng = random.Random(4)
    for _ in range(5):
        q = unit(rng, DIM)
        sq = encode_query(" ".join(rng.sample(WORDS, 2)))
        groups = frozenset({"hr", "it"})
        a = edge.search(groups=groups, dense=q, mode="dense", limit=5)
        b = local.search(groups=groups, dense=q, mode="dense", limit=5)
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.payload for h in a] == [h.payload for h in b]
        # lexical: the migrated sparse vectors give the same BM25 scores (ties may reorder ids)
        a = edge.search(groups=groups, sparse=sq, mode="lexical", limit=5)
        b = local.search(groups=groups, sparse=sq, mode="lexical", limit=5)
        assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-4)
