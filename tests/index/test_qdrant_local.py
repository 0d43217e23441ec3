"""The VectorIndex contract on qdrant-client's local mode: the same client code, requests and
models as against a Qdrant server (the production backend), without a server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qdrant_client import models

from core.settings import Settings
from ingest.index import VectorIndex
from ingest.index.qdrant import QdrantIndex
from ingest.model import ChunkPoint
from tests.index import spy
from tests.index.contract import Schema, VectorIndexContract, schema_type
from tests.index.data import settings_for


class TestQdrantLocalIndex(VectorIndexContract):
    engine = spy.QDRANT_CLIENT

    def settings(self, root: Path) -> Settings:
        return settings_for("local", root)

    def create_collection(self, idx: VectorIndex, dim: int) -> Schema:
        """Local mode accepts payload indexes but does not report them: the requests that
        created them stand in for the report."""
        assert isinstance(idx, QdrantIndex)
        s = spy.install(idx, self.engine, None)
        try:
            idx.ensure_collection(dim)
        finally:
            spy.uninstall(idx, s)
        info = idx.client.get_collection(idx.collection)
        return Schema(
            dim=info.config.params.vectors["dense"].size,
            distance=info.config.params.vectors["dense"].distance.value.lower(),
            idf=info.config.params.sparse_vectors["lexical"].modifier == "idf",
            payload_indexes=frozenset(
                (c[1][1], schema_type(c[1][2])) for c in s.calls if c[0] == "create_payload_index"
            ),
        )

    def unfiltered_reads(
        self, engine: spy.EngineSpy, idx: VectorIndex, corpus: list[ChunkPoint]
    ) -> list[Callable[[], object]]:
        assert isinstance(idx, QdrantIndex)
        allowed_only = models.Filter(  # the right groups, but no must_not on denied_groups
            must=[models.FieldCondition(key="allowed_groups", match=models.MatchAny(any=["eng"]))]
        )
        return [
            lambda: engine.query_points(idx.collection, query=corpus[0].dense, using="dense"),
            lambda: engine.query_points(
                idx.collection, query=corpus[0].dense, using="dense", query_filter=allowed_only
            ),
            lambda: engine.scroll(idx.collection, limit=3),
        ]
