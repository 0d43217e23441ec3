"""The Embedder contract: what the sync and the retriever rely on from any embedding backend.

Each backend's test module subclasses :class:`EmbedderContract` as ``Test<Backend>`` and
provides one class-scoped fixture, ``embedder``: a warmed-up
:class:`~ingest.encoding.base.Embedder` (models are slow to load, so once per class). The
sentences below are plain English; a general-purpose sentence embedding model of any size places
them as the tests expect.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest

from ingest.encoding.base import Embedder

SENTENCES = [
    "Submit travel expense claims within 30 days of returning.",
    "Passwords expire every ninety days.",
    "The fire alarm is tested every Tuesday morning.",
    "Engineers deploy with the blue-green pipeline.",
]
DISTINCT = [
    *SENTENCES,
    "The canteen serves vegetarian lunch on Wednesdays.",
    "Laptops must be encrypted before they leave the office.",
    "Quarterly board meetings are held in Stockholm.",
    "Parental leave can be split between both parents.",
]


def cos(a: list[float], b: list[float]) -> float:
    """Cosine of two unit vectors."""
    return sum(x * y for x, y in zip(a, b, strict=True))


class EmbedderContract:
    """Every :class:`~ingest.encoding.base.Embedder` implementation passes these tests."""

    def test_speaks_the_protocol(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert isinstance(embedder.model_id, str) and embedder.model_id
        assert isinstance(embedder.dim, int) and embedder.dim > 0

    def test_vectors_have_the_dimension_and_unit_length(self, embedder: Embedder) -> None:
        vecs = embedder.embed_documents(["Expense reports are due monthly.", "VPN setup guide"])
        assert len(vecs) == 2 and all(len(v) == embedder.dim for v in vecs)
        assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4) for v in vecs)
        assert len(embedder.embed_query("VPN setup guide")) == embedder.dim
        assert embedder.embed_documents([]) == []

    def test_related_sentences_are_closer_than_unrelated(self, embedder: Embedder) -> None:
        q = embedder.embed_query("How do I get reimbursed for a business trip?")
        related = embedder.embed_query(SENTENCES[0])
        unrelated = embedder.embed_query(SENTENCES[2])
        assert cos(q, related) > cos(q, unrelated) + 0.2

    def test_batch_keeps_the_order_of_its_texts(self, embedder: Embedder) -> None:
        """Each text of a batch gets its own vector, in order. A vector may shift a little with
        the batch around it (ONNX int8 quantizes activations per batch: cos 0.991 measured here),
        never by much."""
        batch = embedder.embed_documents(DISTINCT)
        alone = [embedder.embed_documents([t])[0] for t in DISTINCT]
        assert len(batch) == len(DISTINCT)
        for i, got in enumerate(batch):
            sims = [cos(got, a) for a in alone]
            assert max(range(len(sims)), key=sims.__getitem__) == i
            assert sims[i] > 0.97

    def test_thread_safe(self, embedder: Embedder) -> None:
        texts = [f"policy number {i} about laptops" for i in range(16)]
        expected = [embedder.embed_query(t) for t in texts]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda t: embedder.embed_query(t), texts))
        for got, want in zip(results, expected, strict=True):
            assert got == pytest.approx(want, abs=1e-5)

    def test_warm_up_again_changes_nothing(self, embedder: Embedder) -> None:
        before = embedder.embed_query(SENTENCES[1])
        dim = embedder.dim
        embedder.warm_up()
        assert embedder.dim == dim
        assert embedder.embed_query(SENTENCES[1]) == pytest.approx(before, abs=1e-6)
