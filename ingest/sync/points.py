"""Chunk points of one planned file: payload fields and deterministic ids (ingest/model.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ingest.model import ChunkPoint, SparseVector, make_doc_id, make_point_id, payload_mtime
from ingest.parsing.workers import ChunkData
from ingest.sync.plan import Index


def doc_id_of(source: str, item: Index) -> str:
    return item.record.doc_id if item.record else make_doc_id(source, item.entry.rel_path)


def payload(
    source: str, item: Index, i: int, text: str, section: Any, title: Any, page: Any
) -> dict[str, Any]:
    return {
        "doc_id": doc_id_of(source, item),
        "path": item.entry.rel_path,
        "source": source,
        "chunk_index": i,
        "text": text,
        "section": section,
        "title": title,
        "page": page,
        "allowed_groups": list(item.access.groups),
        "denied_groups": list(item.access.denied),
        "classification": item.access.classification,
        "content_hash": item.sha256,
        "mtime": payload_mtime(item.entry.mtime_ns),
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def new_points(
    source: str, item: Index, chunks: Sequence[ChunkData], vectors: Sequence[list[float]]
) -> list[ChunkPoint]:
    """Points of freshly parsed and embedded chunks."""
    doc_id = doc_id_of(source, item)
    points = []
    for i, (chunk, vec) in enumerate(zip(chunks, vectors, strict=True)):
        text, section, title, page, lex_idx, lex_val = chunk
        points.append(
            ChunkPoint(
                make_point_id(doc_id, i),
                vec,
                SparseVector(list(lex_idx), list(lex_val)),
                payload(source, item, i, text, section, title, page),
            )
        )
    return points


def moved_points(source: str, item: Index, donors: Sequence[ChunkPoint]) -> list[ChunkPoint]:
    """The donor's vectors under ``item``'s ids and payload (a rename or copy: no embedding)."""
    doc_id = doc_id_of(source, item)
    return [
        ChunkPoint(
            make_point_id(doc_id, i),
            list(old.dense),
            old.sparse,
            payload(
                source,
                item,
                i,
                str(old.payload.get("text", "")),
                old.payload.get("section"),
                old.payload.get("title"),
                old.payload.get("page"),
            ),
        )
        for i, old in enumerate(donors)
    ]
