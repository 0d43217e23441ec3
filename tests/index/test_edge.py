"""The VectorIndex contract on Qdrant Edge, the embedded default (in-process, one store dir)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import qdrant_edge as qe

from core.settings import Settings
from ingest.index import VectorIndex
from ingest.index.edge import EdgeIndex
from ingest.model import ChunkPoint
from tests.index import spy
from tests.index.contract import Schema, VectorIndexContract, schema_type
from tests.index.data import settings_for


class TestEdgeIndex(VectorIndexContract):
    engine = spy.EDGE

    def settings(self, root: Path) -> Settings:
        return settings_for("edge", root)

    def create_collection(self, idx: VectorIndex, dim: int) -> Schema:
        assert isinstance(idx, EdgeIndex)
        idx.ensure_collection(dim)
        cfg = json.loads((Path(idx.path) / "edge_config.json").read_text())
        return Schema(
            dim=cfg["vectors"]["dense"]["size"],
            distance=cfg["vectors"]["dense"]["distance"].lower(),
            idf=cfg["sparse_vectors"]["lexical"].get("modifier") == "idf",
            payload_indexes=frozenset(
                (field, schema_type(info.data_type))
                for field, info in idx._shard.info().payload_schema.items()
            ),
        )

    def unfiltered_reads(
        self, engine: spy.EngineSpy, idx: VectorIndex, corpus: list[ChunkPoint]
    ) -> list[Callable[[], object]]:
        nearest = qe.Query.Nearest(corpus[0].dense, using="dense")
        bare = qe.QueryRequest(limit=3, query=nearest)
        wide = qe.QueryRequest(
            limit=3,
            query=nearest,
            filter=qe.Filter(
                must=[qe.FieldCondition("allowed_groups", match=qe.MatchAny(["eng", "hr"]))]
            ),
        )
        no_deny = qe.QueryRequest(  # the right groups, but no must_not on denied_groups
            limit=3,
            query=nearest,
            filter=qe.Filter(
                must=[qe.FieldCondition("allowed_groups", match=qe.MatchAny(["eng"]))]
            ),
        )
        return [
            lambda: engine.query(bare),
            lambda: engine.query(wide),
            lambda: engine.query(no_deny),
            lambda: engine.scroll(qe.ScrollRequest(limit=3)),
        ]
