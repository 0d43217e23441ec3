"""Ingest benchmark: end-to-end sync throughput against the raw speed of the embedding model.

    .venv/bin/python -m bench.ingest --corpus ../shared/corpus/handbook-18f
    .venv/bin/python -m bench.ingest --corpus ../shared/corpus/formats --formats
    .venv/bin/python -m bench.ingest --corpus ... --embedding-backend onnx-int8
    .venv/bin/python -m bench.ingest --corpus ... --compare-backends
    .venv/bin/python -m bench.ingest --corpus ... --scaleout       # Celery 1 and 2 workers,
                                                                   # embedding service
    .venv/bin/python -m bench.ingest --corpus ... --langchain      # vs the textbook pipeline

Prints one JSON object. Everything is measured in this run, in a fresh temporary data dir:

- the first sync (``run_sync``, real parser workers, real model, Qdrant Edge, SQLite): files,
  chunks, seconds, files/s, chunks/s (model loading and parser start-up included);
- the raw embedding throughput of the same model (same backend, same batch size) on the same
  chunk texts, read back from the index after the sync, and the ratio e2e / raw;
- peak memory of this process plus every descendant (forkserver, parser workers), sampled
  every 0.25 s: the sum of RSS (counts shared pages once per process) and the sum of PSS
  (shared pages divided among their sharers: the physical memory actually used);
- an unchanged re-sync, in process and as a fresh ``ingest sync`` CLI process (wall clock);
- ``--before-ingest KEY=VALUE,...``: first a sync with those ``[ingest]`` settings in its own
  data dir (ingest as it was before a change), and the after/before throughput ratios;
- ``--formats``: counts by status and by reason code, and a check that every file ended
  ``ok``/``failed``/``skipped`` with a reason;
- ``--compare-backends``: raw throughput of torch fp32, ONNX (fp32, the default) and ONNX int8
  on the same texts, each one's speed-up over torch and the cosine similarity (mean, min) of its
  vectors to torch's;
- ``--scaleout`` (:mod:`bench.scaleout`): the same sync through Celery with 1 and with 2
  ``ingest worker`` processes (a loopback ``redis-server``), and the OpenAI-compatible embedding
  server (infinity-emb, ``ENCLAVE_TEST_INFINITY``) against in-process embedding;
- ``--langchain`` (:mod:`bench.langchain_ingest`): wall time of Enclave's default sync against
  the textbook LangChain ingest of the same corpus, each in a fresh process, alternating, best
  of two each.

Every JSON carries the load average before and after: the build machine is shared, so
absolute speeds vary between runs and only ratios within one run compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
RULES = "default: [everyone]\ndefault_classification: internal\n"


class MemorySampler:
    """Peak RSS and PSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        rss = pss = 0
        for p in procs:
            try:
                info = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(procs))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def _settings(
    data_dir: Path,
    backend: str | None,
    workers: int | None,
    ingest: dict[str, str] | None = None,
    extra: str = "",
) -> Any:
    from core.settings import load_settings

    rules = data_dir / "access.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    rules.write_text(RULES)
    cfg = data_dir / "enclave.toml"
    lines = [f'data_dir = "{data_dir / "data"}"', f'access_rules = "{rules}"']
    if backend:
        lines += ["[embedding]", f'backend = "{backend}"']
    keys = dict(ingest or {})
    if workers:
        keys["workers"] = str(workers)
    if keys:
        lines += ["[ingest]", *(f"{k} = {v}" for k, v in keys.items())]
    cfg.write_text("\n".join(lines) + "\n" + extra)
    return load_settings(cfg), cfg


def _chunk_texts(settings: Any) -> list[str]:
    from ingest.index import open_index

    index = open_index(settings)
    try:
        return [str(p.payload["text"]) for b in index.scroll_points() for p in b]
    finally:
        index.close()


def _raw_throughput(settings: Any, texts: list[str]) -> float:
    from ingest.encoding.embed import load_embedder

    embedder = load_embedder(settings.embedding, settings.models_dir)
    embedder.embed_documents(texts[: settings.embedding.batch_size])  # first-call costs
    start = time.perf_counter()
    embedder.embed_documents(texts)
    return len(texts) / (time.perf_counter() - start)


def _states(settings: Any) -> dict[str, Any]:
    from core.db import session_scope
    from ingest.sync.state import FileRow, open_state

    engine = open_state(settings.db_url)
    by_status: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    unexplained: list[str] = []
    with session_scope(engine) as s:
        for row in s.scalars(select(FileRow)):
            by_status[row.status] += 1
            if row.status in ("failed", "skipped"):
                key = f"{row.status}:{row.reason_code}"
                by_reason[key] += 1
                examples.setdefault(key, []).append(f"{row.rel_path}: {row.message}")
                if not row.reason_code or not row.message:
                    unexplained.append(row.rel_path)
            elif row.status != "ok":
                unexplained.append(row.rel_path)
    return {
        "by_status": dict(by_status),
        "by_reason": dict(by_reason),
        "examples": {k: v[:3] for k, v in sorted(examples.items())},
        "files_without_final_state_or_reason": unexplained,
    }


def _cli_resync(cfg: Path, corpus: Path) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "sync",
            str(corpus),
            "--source",
            "bench",
            "--json",
            "--config",
            str(cfg),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, proc.returncode


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ingest.sources.local import FileEntry, walk
    from ingest.sync.run import run_sync

    corpus = Path(args.corpus).resolve()
    tmp = Path(args.data_dir or tempfile.mkdtemp(prefix="enclave-bench-"))
    settings, cfg = _settings(tmp, args.embedding_backend, args.workers)
    files_on_disk = sum(1 for e in walk(corpus) if isinstance(e, FileEntry))
    before = _before_sync(args, corpus, tmp) if args.before_ingest else None

    load_start = [round(x, 2) for x in os.getloadavg()]
    cpu_start = time.process_time()
    with MemorySampler() as mem:
        start = time.perf_counter()
        summary = run_sync(settings, corpus, "bench", args.workers)
        seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    result: dict[str, Any] = {
        "load_average_start": load_start,
        "corpus": str(corpus),
        "embedding_backend": settings.embedding.backend,
        "workers": args.workers or settings.ingest.workers,
        "files": files_on_disk,
        "files_ok": summary.added,
        "files_failed": summary.failed_count,
        "files_skipped": summary.skipped_count,
        "chunks": summary.chunks,
        "seconds": round(seconds, 2),
        "files_per_s": round(files_on_disk / seconds, 2),
        "chunks_per_s": round(summary.chunks / seconds, 2),
        "sync_process_cpu_ms_per_file": round(1000 * cpu_seconds / max(files_on_disk, 1), 1),
        "peak_rss_mb": round(mem.peak_rss / 2**20),
        "peak_pss_mb": round(mem.peak_pss / 2**20),
        "peak_processes": mem.peak_processes,
    }
    if before is not None:
        result["before"] = before
        result["after_vs_before_chunks_per_s"] = round(
            result["chunks_per_s"] / before["chunks_per_s"], 3
        )
        result["after_vs_before_seconds"] = round(result["seconds"] / before["seconds"], 3)
    texts = _chunk_texts(settings)
    if texts:
        raw = _raw_throughput(settings, texts)
        result["raw_embed_chunks_per_s"] = round(raw, 2)
        result["ratio_e2e_to_raw"] = round(result["chunks_per_s"] / raw, 3)
        if args.compare_backends:
            result["backends"] = _compare(settings, texts)

    start = time.perf_counter()
    again = run_sync(settings, corpus, "bench", args.workers)
    result["resync_unchanged_seconds"] = round(time.perf_counter() - start, 3)
    result["resync_unchanged_files"] = again.unchanged
    cli_seconds, code = _cli_resync(cfg, corpus)
    result["resync_unchanged_cli_seconds"] = round(cli_seconds, 3)
    result["resync_cli_exit_code"] = code
    if args.formats:
        result["states"] = _states(settings)
    result["data_dir"] = str(tmp)
    if args.scaleout:
        from bench.scaleout import scaleout

        result["scaleout"] = scaleout(corpus, tmp, summary.chunks, texts, result)
    if args.langchain:
        from bench.langchain_ingest import compare

        result["langchain"] = compare(corpus, runs=2)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _before_sync(args: argparse.Namespace, corpus: Path, tmp: Path) -> dict[str, Any]:
    """A first sync with ``--before-ingest`` settings (how ingest ran before a change), in its
    own data dir, right before the main one: the same run, the same machine load."""
    from ingest.sync.run import run_sync

    overrides = dict(item.split("=", 1) for item in args.before_ingest.split(",") if item)
    settings, _ = _settings(tmp / "before", args.embedding_backend, args.workers, overrides)
    start = time.perf_counter()
    summary = run_sync(settings, corpus, "bench", args.workers)
    seconds = time.perf_counter() - start
    return {
        "ingest": overrides,
        "files_ok": summary.added,
        "chunks": summary.chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(summary.chunks / seconds, 2),
    }


def _compare(settings: Any, texts: list[str]) -> dict[str, Any]:
    """Raw throughput of every in-process backend on the same texts (best of two passes each),
    the speed-up over torch fp32, and how close each one's vectors are to torch's."""
    import numpy as np

    from ingest.encoding.embed import load_embedder

    rates: dict[str, float] = {}
    out_vectors: dict[str, Any] = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        try:
            emb = load_embedder(
                settings.embedding.model_copy(update={"backend": backend}), settings.models_dir
            )
        except Exception as exc:  # report, do not crash the benchmark
            rates[backend] = float("nan")
            print(f"{backend} backend unavailable: {exc}", file=sys.stderr)
            continue
        emb.embed_documents(texts[:32])
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            got = emb.embed_documents(texts)
            best = min(best, time.perf_counter() - start)
        rates[backend], out_vectors[backend] = len(texts) / best, np.asarray(got)
    torch_rate, torch_vecs = rates.get("torch"), out_vectors.get("torch")
    result: dict[str, Any] = {}
    for backend, rate in rates.items():
        row: dict[str, Any] = {"chunks_per_s": round(rate, 2)}
        if torch_rate and backend != "torch" and backend in out_vectors:
            cos = np.sum(out_vectors[backend] * torch_vecs, axis=1)
            row["speedup_vs_torch"] = round(rate / torch_rate, 3)
            row["cosine_to_torch_mean"] = round(float(np.mean(cos)), 5)
            row["cosine_to_torch_min"] = round(float(np.min(cos)), 5)
        result[backend] = row
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="directory to sync")
    parser.add_argument("--formats", action="store_true", help="report states by reason code")
    parser.add_argument(
        "--embedding-backend",
        default=None,
        choices=["onnx", "torch", "onnx-int8"],
        help="default: the configured default",
    )
    parser.add_argument(
        "--compare-backends",
        action="store_true",
        help="also time every in-process embedding backend on the same chunk texts",
    )
    parser.add_argument("--workers", type=int, default=None, help="parser processes")
    parser.add_argument("--data-dir", default=None, help="where to put the index (default: tmp)")
    parser.add_argument(
        "--before-ingest",
        default="",
        help="KEY=VALUE,... [ingest] settings of a first sync measured in the same run "
        "(e.g. front_matter=false,chunk_keywords=false: ingest before front matter)",
    )
    parser.add_argument(
        "--scaleout",
        action="store_true",
        help="also sync through Celery (1 and 2 workers) and time the embedding service",
    )
    parser.add_argument(
        "--langchain",
        action="store_true",
        help="also compare with the textbook LangChain ingest (fresh processes, best of two)",
    )
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
