"""Creates the configured :class:`~ingest.encoding.base.Embedder`, warmed up, once per process.

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

    ``models_dir`` (normally ``Settings.models_dir``) holds exported models (ONNX int8)."""
    cache_root = Path(models_dir) if models_dir is not None else default_models_dir()
    onnx_root = str(cache_root.resolve()) if settings.backend == "onnx-int8" else ""
    key = (
        settings.model,
        settings.backend,
        settings.max_seq_length,
        settings.batch_size,
        onnx_root,
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
    from ingest.encoding.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings, models_dir)
