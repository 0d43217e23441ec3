"""The vector-index seam: one protocol, implemented by Qdrant Edge and by qdrant-client.

Access control is part of the signature: every search takes the caller's groups and an empty
set returns nothing; a chunk whose ``denied_groups`` share one of them is never returned. There
is no method that searches without that filter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from ingest.model import ChunkPoint, Hit, SparseVector

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "lexical"

SearchMode = Literal["dense", "lexical", "hybrid"]
Fusion = Literal["rrf", "dbsf"]


@runtime_checkable
class VectorIndex(Protocol):
    """A collection of chunk points with a dense and a sparse (lexical) named vector."""

    def ensure_collection(self, dense_dim: int) -> None:
        """Create the collection (and the keyword indexes on ``allowed_groups``,
        ``denied_groups``, ``doc_id``, ``source``) if missing; fail clearly if it exists with
        another dense size."""

    def upsert(self, points: Sequence[ChunkPoint]) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        """Overwrite the given payload keys on existing points (no re-embedding)."""

    def doc_point_ids(self, doc_id: str) -> set[str]: ...

    def iter_doc_ids(self, source: str | None = None) -> Iterator[tuple[str, str]]:
        """Yield ``(point_id, doc_id)`` for every point (of one source): crash repair."""

    def count(self) -> int: ...

    def search(
        self,
        *,
        groups: frozenset[str],
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        mode: SearchMode = "hybrid",
        limit: int = 10,
        fusion: Fusion = "rrf",
        sources: Sequence[str] | None = None,
        candidates: int | None = None,
    ) -> list[Hit]:
        """Ranked chunks readable by ``groups``: any-of match on ``allowed_groups`` and none-of
        on ``denied_groups`` (deny wins).

        ``groups`` empty -> ``[]`` without touching the engine (fail closed). ``sources``
        restricts to those source names (``[]`` -> nothing). ``candidates``: how many hits each
        arm of a hybrid search prefetches before fusion (default ``max(4 * limit, 40)``)."""

    def get_points(self, ids: Sequence[str]) -> list[ChunkPoint]:
        """The points with these ids that exist, with vectors and payload (any order). The sync
        uses it to move a renamed file's vectors instead of embedding them again."""

    def scroll_points(self, batch_size: int = 256) -> Iterator[list[ChunkPoint]]:
        """Every point with its vectors and payload, in batches (migration embedded -> server)."""

    def optimize(self) -> None:
        """Build the vector indexes after a bulk write (Edge optimizes only when asked; the
        server optimizes in the background, so there it returns at once)."""

    def flush(self) -> None:
        """Make every acknowledged write durable (survives a kill -9 after it returns)."""

    def close(self) -> None:
        """Release the store (and its process lock). Idempotent."""
