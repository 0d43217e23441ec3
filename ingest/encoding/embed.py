"""Creates the configured :class:`~ingest.encoding.base.Embedder`, warmed up, once per process.

Backends (``embedding.backend``): ``onnx`` (the default), ``torch`` and ``onnx-int8`` run
sentence-transformers in this process (:mod:`ingest.encoding.sentence_transformer`); ``openai``
asks an OpenAI-compatible ``/v1/embeddings`` server (:mod:`ingest.encoding.openai`).

The model is the biggest thing a process loads (seconds and hundreds of MB), so every caller
in a process shares one instance per configuration. :func:`load_embedder` is the explicit
warm-up point: it returns only after the model is loaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.encoding.base import Embedder

if TYPE_CHECKING:
    from core.settings import EmbeddingSettings

_cache: dict[tuple[Any, ...], Embedder] = {}
_cache_lock = threading.Lock()


def default_models_dir() -> Path:
    return Path(os.environ.get("ENCLAVE_DATA_DIR", "var")) / "models"


def load_embedder(settings: EmbeddingSettings, models_dir: Path | None = None) -> Embedder:
    """The embedder ``settings`` describe, warmed up; later calls with the same settings share it.

    ``models_dir`` (normally ``Settings.models_dir``) holds exported models (ONNX)."""
    cache_root = Path(models_dir) if models_dir is not None else default_models_dir()
    onnx_root = str(cache_root.resolve()) if settings.backend.startswith("onnx") else ""
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
            found = create_embedder(settings, cache_root)
            found.warm_up()
            _cache[key] = found
        return found


def create_embedder(settings: EmbeddingSettings, models_dir: Path) -> Embedder:
    """A new, not yet warmed-up embedder for ``settings.backend`` (one branch per backend)."""
    if settings.backend == "openai":
        from ingest.encoding.openai import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings)
    from ingest.encoding.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings, models_dir)


def configured_model_id(settings: EmbeddingSettings) -> str:
    """The ``model_id`` the configured backend reports once loaded, without loading it (the
    distributed sync checks its workers against it)."""
    from ingest.encoding.sentence_transformer import DEFAULT_MODEL_ID

    if settings.backend == "openai":
        from ingest.encoding.openai import served_name

        return served_name(settings.model)
    if settings.model == "default":
        return DEFAULT_MODEL_ID
    return Path(settings.model).expanduser().resolve().name


def same_model(recorded: str, configured: str) -> bool:
    """Whether ``embedding.model`` values name the same model (``default`` is the packaged
    MiniLM under its served name too, so an index built in process can move to a server)."""
    from ingest.encoding.sentence_transformer import DEFAULT_MODEL_ID

    def canonical(value: str) -> str:
        return DEFAULT_MODEL_ID if value == "default" else value

    return canonical(recorded) == canonical(configured)
