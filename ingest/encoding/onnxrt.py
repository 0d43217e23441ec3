"""A sentence-transformers ONNX export run by ONNX Runtime and ``tokenizers`` alone.

sentence-transformers' own ONNX backend runs the same graph, but loading it imports torch,
transformers and optimum first: about 4 s of a sync's or a worker's start on two cores, and a
few hundred MB of memory, for a model that then runs without them. This runner reads the
export directory that ``ingest prepare-model`` (or the first load) wrote and repeats what
sentence-transformers does with it:

1. tokenize with the model's ``tokenizer.json``: truncation to the sequence limit (the
   smallest of ``embedding.max_seq_length`` and the model's own, from
   ``sentence_bert_config.json`` or ``tokenizer_config.json``), padding to the longest text of
   the batch (the file's own fixed padding is replaced), lower case first where
   ``sentence_bert_config.json`` says ``do_lower_case``;
2. run the graph on ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the graph
   takes them), texts sorted by length so a batch pads little;
3. pool the token embeddings as ``1_Pooling/config.json`` says (mean, CLS or max), and
   L2-normalize.

Its vectors are sentence-transformers' (cosine > 0.9999 on every text, tested). A model whose
pipeline has other modules (a Dense projection, say) is refused with a clear error rather than
embedded differently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import EmbeddingBackendUnavailable

_KNOWN_MODULES = ("Transformer", "Pooling", "Normalize")
_POOLING_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}


class OnnxEncoder:
    """Texts -> L2-normalized vectors with the graph in ``export_dir / file_name``."""

    def __init__(self, export_dir: Path, file_name: str, *, max_length: int, threads: int) -> None:
        """``max_length``: the sequence limit asked for (capped by the tokenizer's own);
        ``threads``: ONNX Runtime's intra-op threads (0: its default, the physical cores)."""
        import onnxruntime
        from tokenizers import Tokenizer

        self.pooling = pooling_mode(export_dir)
        tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
        config = _json(export_dir / "tokenizer_config.json")
        sbert = _json(export_dir / "sentence_bert_config.json")
        limits = [max_length, int(config.get("model_max_length") or 512)]
        if sbert.get("max_seq_length"):  # older exports keep the model's limit here
            limits.append(int(sbert["max_seq_length"]))
        self.max_length = min(limit for limit in limits if limit < 100_000)
        self._lower = bool(sbert.get("do_lower_case"))
        tokenizer.enable_truncation(max_length=self.max_length)
        pad_token = str(config.get("pad_token") or "[PAD]")
        pad_id = tokenizer.token_to_id(pad_token)
        tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad_token)
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(export_dir / file_name), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self.encode([""], batch_size=1).shape[1])

    def encode(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray[Any, Any]:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: np.ndarray[Any, Any] | None = None
        for start in range(0, len(order), max(1, batch_size)):
            rows = order[start : start + batch_size]
            vectors = self._batch([texts[i] for i in rows])
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        assert out is not None
        return out

    def _batch(self, texts: list[str]) -> np.ndarray[Any, Any]:
        if self._lower:  # as sentence-transformers does for such models
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        tokens = self._session.run(None, feed)[0]
        weights = mask[..., None].astype(np.float32)
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        elif self.pooling == "max":
            pooled = np.where(weights > 0, tokens, -1e9).max(axis=1)
        else:
            pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def pooling_mode(export_dir: Path) -> str:
    """``mean``, ``cls`` or ``max``: how the model in ``export_dir`` pools its tokens."""
    modules = _json(export_dir / "modules.json") or []
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    unknown = [k for k in kinds if k not in _KNOWN_MODULES]
    if unknown or "Pooling" not in kinds:
        raise EmbeddingBackendUnavailable(
            f"the model in {export_dir} has modules {kinds}; the ONNX backends run only "
            "Transformer + Pooling (+ Normalize) models. Use embedding.backend = 'torch'."
        )
    pooling_dir = next(m["path"] for m in modules if str(m.get("type", "")).endswith("Pooling"))
    config = _json(export_dir / pooling_dir / "config.json")
    mode = config.get("pooling_mode")
    if mode is None:  # the older format: one boolean per mode
        modes = [name for key, name in _POOLING_KEYS.items() if config.get(key)]
        mode = modes[0] if len(modes) == 1 else None
    if mode not in ("mean", "cls", "max"):
        raise EmbeddingBackendUnavailable(
            f"the model in {export_dir} pools with {config}; the ONNX backends support mean, "
            "CLS or max pooling. Use embedding.backend = 'torch'."
        )
    return str(mode)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
