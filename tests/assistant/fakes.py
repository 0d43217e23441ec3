"""Fast stand-ins for unit tests (the real embedding model is tested in tests/encoding and in
the end-to-end tests)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from assistant.types import RetrievedChunk
from ingest.encoding.sparse import tokenize

DIM = 64


class BagOfWordsEmbedder:
    """Normalised hashed bag of (stemmed) words: texts sharing words are close."""

    model_id = "bag-of-words"
    dim = DIM

    def __init__(self) -> None:
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)

    @staticmethod
    def _vec(text: str) -> list[float]:
        v = [0.0] * DIM
        for tok in tokenize(text):
            v[int(hashlib.blake2b(tok.encode(), digest_size=2).hexdigest(), 16) % DIM] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v]


def chunk(n: int, text: str, *, path: str | None = None, title: str = "Handbook") -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=f"c{n}",
        doc_id=f"d{n}",
        path=path or f"docs/p{n}.md",
        source="drive",
        section=None,
        title=title,
        page=None,
        text=text,
        score=1.0 / n,
        rank=n,
    )
