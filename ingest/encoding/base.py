"""The embedding seam: what the sync and the retriever need from a text embedding model.

One protocol, :class:`Embedder`. Implementations:
:class:`~ingest.encoding.sentence_transformer.SentenceTransformerEmbedder` (in-process, torch
fp32 or ONNX int8). :func:`ingest.encoding.embed.load_embedder` creates the configured one and
warms it up. Every implementation passes ``tests/encoding/contract.py::EmbedderContract``.

Loading is explicit: creating an embedder is cheap; :meth:`Embedder.warm_up` loads the model (or
reaches the server that holds it), and only after it are ``dim`` and the embed methods usable.
Vectors are L2-normalized, because the index compares them by cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Embedder(Protocol):
    """Dense sentence embeddings of one model. Safe to call from several threads."""

    @property
    def model_id(self) -> str:
        """Names the model (known before ``warm_up``); an index holds vectors of one model."""

    @property
    def dim(self) -> int:
        """Length of every vector (after ``warm_up``)."""

    def warm_up(self) -> None:
        """Load what embedding needs. Idempotent and thread-safe; errors are
        :class:`~core.errors.EmbeddingError` s (a missing model: ``ConfigError``)."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order; ``[]`` for no texts."""

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query."""
