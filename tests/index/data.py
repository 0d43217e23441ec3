"""Test data of the index tests: chunk points, a small corpus with access groups, and the
settings that open each backend's store under a directory."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from core.settings import Settings
from ingest.encoding.sparse import encode_document, encode_query
from ingest.index import VectorIndex
from ingest.model import ChunkPoint, Hit, make_doc_id, make_point_id

DIM = 16
EVERYONE = frozenset({"hr", "eng", "admin", "it"})
MODES = ("dense", "lexical", "hybrid")


def settings_for(kind: str, root: Path) -> Settings:
    """``edge``: Qdrant Edge; ``local``: qdrant-client's local mode (speaks the server API)."""
    if kind == "edge":
        return Settings(data_dir=root, index={"backend": "edge"})
    return Settings(data_dir=root, index={"backend": "qdrant", "qdrant_path": root / "qdrant"})


def unit(rng: random.Random, dim: int = DIM) -> list[float]:
    v = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def chunk(
    rng: random.Random,
    *,
    source: str,
    path: str,
    index: int,
    text: str,
    groups: list[str],
    dim: int = DIM,
) -> ChunkPoint:
    doc_id = make_doc_id(source, path)
    return ChunkPoint(
        id=make_point_id(doc_id, index),
        dense=unit(rng, dim),
        sparse=encode_document(text),
        payload={
            "doc_id": doc_id,
            "path": path,
            "source": source,
            "chunk_index": index,
            "text": text,
            "section": "Intro",
            "title": path,
            "page": index + 1,
            "allowed_groups": groups,
            "classification": "internal",
            "content_hash": "h" + doc_id[:8],
            "mtime": 1700000000.5,
            "ingested_at": "2026-11-26T18:00:00Z",
        },
    )


CORPUS = [
    (
        "drive",
        "hr/salaries.md",
        "Salary bands for 2026: engineers level three earn ninety thousand.",
        ["hr"],
    ),
    (
        "drive",
        "hr/salaries.md",
        "Bonus payouts happen every March after performance reviews.",
        ["hr"],
    ),
    (
        "drive",
        "eng/deploy.md",
        "Deploy the service with the blue green pipeline on Fridays.",
        ["eng"],
    ),
    ("drive", "eng/deploy.md", "Rollback steps: revert the release tag and redeploy.", ["eng"]),
    (
        "drive",
        "all/handbook.md",
        "Office hours are nine to five; lunch is served at noon.",
        ["eng", "hr"],
    ),
    (
        "drive",
        "all/handbook.md",
        "Expense reports for travel must be filed within thirty days.",
        ["eng", "hr"],
    ),
    ("drive", "secret/unassigned.md", "Merger plans with Globex are confidential.", []),
    (
        "wiki",
        "it/passwords.md",
        "Reset your password through the IT self-service portal.",
        ["eng", "hr"],
    ),
]


def make_corpus() -> list[ChunkPoint]:
    """The eight chunks of :data:`CORPUS` (the same vectors on every call)."""
    rng = random.Random(7)
    counters: dict[str, int] = {}
    points = []
    for source, path, text, groups in CORPUS:
        i = counters.get(path, 0)
        counters[path] = i + 1
        points.append(chunk(rng, source=source, path=path, index=i, text=text, groups=groups))
    return points


def by_path(points: list[ChunkPoint], path: str, i: int = 0) -> ChunkPoint:
    return [p for p in points if p.payload["path"] == path][i]


def ask(
    idx: VectorIndex, point: ChunkPoint, groups: frozenset[str], mode: str, **kw: Any
) -> list[Hit]:
    """Query with the point's own dense vector and its exact text: the strongest possible match."""
    return idx.search(
        groups=groups,
        dense=point.dense,
        sparse=encode_query(point.payload["text"]),
        mode=mode,  # type: ignore[arg-type]
        **kw,
    )
