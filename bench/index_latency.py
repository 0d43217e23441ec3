"""Retrieve latency with the ACL filter: Qdrant Edge at 10k/100k chunks vs qdrant-client local.

    .venv/bin/python -m bench.index_latency [--sizes 10000,100000] [--queries 200]
        [--baseline-size 10000] [--dim 384]

Synthetic chunks: random normalized 384-d vectors, lexical vectors from
``ingest.encoding.sparse`` over a
Zipf-distributed 20k-word vocabulary (~60 words a chunk), and a realistic group spread (half the
chunks readable by all staff, the rest by one department, 2% by nobody). Every query goes
through ``VectorIndex.search`` with a user's groups, so the ACL filter is always on. Users rotate
between a broad one (staff + eng) and a narrow one (legal only, ~5% of the chunks).

Edge is measured after ``optimize()`` (what ``ingest sync`` calls after a bulk write) and, at
the largest size, also before it and with collection-wide IDF (``index.scoped_idf = false``).
qdrant-client's local mode (the server API's in-process implementation) runs at
``--baseline-size`` in the same run. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from core.settings import Settings
from ingest.encoding.sparse import encode_document, encode_query
from ingest.index import VectorIndex, open_index
from ingest.index.base import SearchMode
from ingest.model import ChunkPoint, make_doc_id, make_point_id

VOCAB = 20_000
GROUPS: list[tuple[list[str], float]] = [
    (["staff"], 0.50),
    (["eng"], 0.15),
    (["hr"], 0.10),
    (["finance"], 0.08),
    (["it"], 0.07),
    (["legal"], 0.05),
    (["exec", "legal"], 0.03),
    ([], 0.02),
]
USERS = {"broad": frozenset({"staff", "eng"}), "narrow": frozenset({"legal"})}
MODES: tuple[SearchMode, ...] = ("dense", "lexical", "hybrid")
BATCH = 1000


def _words(rng: np.random.Generator, n: int) -> list[str]:
    ranks = rng.zipf(1.3, size=n) % VOCAB
    return [f"w{int(r)}" for r in ranks]


def synthetic_points(n: int, dim: int, seed: int) -> Iterator[list[ChunkPoint]]:
    rng = np.random.default_rng(seed)
    group_sets = [g for g, _ in GROUPS]
    weights = np.array([w for _, w in GROUPS])
    for start in range(0, n, BATCH):
        size = min(BATCH, n - start)
        vecs = rng.standard_normal((size, dim), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        picks = rng.choice(len(group_sets), size=size, p=weights / weights.sum())
        batch = []
        for j in range(size):
            i = start + j
            text = " ".join(_words(rng, int(rng.integers(30, 90))))
            doc_id = make_doc_id("bench", f"doc{i // 8}.txt")
            batch.append(
                ChunkPoint(
                    id=make_point_id(doc_id, i % 8),
                    dense=vecs[j].tolist(),
                    sparse=encode_document(text),
                    payload={
                        "doc_id": doc_id,
                        "path": f"doc{i // 8}.txt",
                        "source": "bench",
                        "chunk_index": i % 8,
                        "text": text[:400],
                        "section": "",
                        "title": "",
                        "page": None,
                        "allowed_groups": group_sets[int(picks[j])],
                        "classification": "internal",
                        "content_hash": doc_id,
                        "mtime": 0.0,
                        "ingested_at": "2026-01-01T00:00:00Z",
                    },
                )
            )
        yield batch


def _queries(count: int, dim: int, seed: int) -> list[tuple[list[float], Any]]:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((count, dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [(vecs[i].tolist(), encode_query(" ".join(_words(rng, 4)))) for i in range(count)]


def _pcts(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


def measure(
    idx: VectorIndex,
    queries: list[tuple[list[float], Any]],
    k: int = 10,
    modes: tuple[SearchMode, ...] = MODES,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in modes:
        per_user: dict[str, list[float]] = {u: [] for u in USERS}
        for q_i, (dense, sparse) in enumerate(queries):
            user = list(USERS)[q_i % len(USERS)]
            t0 = time.perf_counter()
            hits = idx.search(groups=USERS[user], dense=dense, sparse=sparse, mode=mode, limit=k)
            per_user[user].append((time.perf_counter() - t0) * 1000)
            assert all(set(h.payload["allowed_groups"]) & USERS[user] for h in hits)
        everything = [x for xs in per_user.values() for x in xs]
        out[mode] = {"all": _pcts(everything), **{u: _pcts(xs) for u, xs in per_user.items()}}
    return out


def run_backend(
    kind: str, n: int, dim: int, n_queries: int, root: Path, before_optimize: bool
) -> dict[str, Any]:
    settings = (
        Settings(data_dir=root, index={"backend": "edge"})
        if kind == "edge"
        else Settings(data_dir=root, index={"backend": "qdrant", "qdrant_path": root / "q"})
    )
    idx = open_index(settings)
    idx.ensure_collection(dim)
    t0 = time.perf_counter()
    for batch in synthetic_points(n, dim, seed=n):
        idx.upsert(batch)
    idx.flush()
    result: dict[str, Any] = {"backend": kind, "chunks": idx.count()}
    result["load_s"] = round(time.perf_counter() - t0, 2)
    queries = _queries(n_queries, dim, seed=1)
    for dense, sparse in queries[:10]:  # warm caches
        idx.search(groups=USERS["broad"], dense=dense, sparse=sparse, mode="hybrid")
    if before_optimize:
        result["before_optimize"] = measure(idx, queries)
    t0 = time.perf_counter()
    idx.optimize()
    result["optimize_s"] = round(time.perf_counter() - t0, 2)
    result["latency"] = measure(idx, queries)
    if before_optimize and hasattr(idx, "scoped_idf"):
        # the same queries with collection-wide IDF (index.scoped_idf = false), same run
        idx.scoped_idf = False
        result["global_idf"] = measure(idx, queries, modes=("lexical", "hybrid"))
        idx.scoped_idf = True
    idx.close()
    t0 = time.perf_counter()
    idx = open_index(settings)
    idx.ensure_collection(dim)
    result["reopen_s"] = round(time.perf_counter() - t0, 3)
    idx.close()
    result["rss_mb_after"] = round(psutil.Process().memory_info().rss / 2**20)
    return result


def encoder_speed(docs: int = 2000) -> dict[str, Any]:
    """Our hashed BM25 encoder vs Edge's built-in ``Bm25`` on the same synthetic texts."""
    import qdrant_edge as qe

    rng = np.random.default_rng(3)
    texts = [" ".join(_words(rng, 60)) for _ in range(docs)]
    t0 = time.perf_counter()
    for t in texts:
        encode_document(t)
    ours = (time.perf_counter() - t0) / docs * 1e6
    bm25 = qe.Bm25()
    t0 = time.perf_counter()
    for t in texts:
        bm25.embed_document(t)
    edge = (time.perf_counter() - t0) / docs * 1e6
    return {
        "docs": docs,
        "enclave_sparse_us_per_doc": round(ours, 1),
        "edge_bm25_us_per_doc": round(edge, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated Edge sizes")
    ap.add_argument("--baseline-size", type=int, default=10_000, help="0 to skip local mode")
    ap.add_argument("--baseline-queries", type=int, default=30)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dim", type=int, default=384)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    report: dict[str, Any] = {
        "bench": "index_latency",
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        "dim": args.dim,
        "k": 10,
        "users": {u: sorted(g) for u, g in USERS.items()},
        "group_spread": {"+".join(g) or "(nobody)": w for g, w in GROUPS},
        "edge": [],
    }
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as tmp:
        for n in sizes:
            report["edge"].append(
                run_backend(
                    "edge",
                    n,
                    args.dim,
                    args.queries,
                    Path(tmp) / f"edge{n}",
                    before_optimize=n == max(sizes),
                )
            )
        if args.baseline_size:
            base = run_backend(
                "local",
                args.baseline_size,
                args.dim,
                args.baseline_queries,
                Path(tmp) / "local",
                before_optimize=False,
            )
            report["qdrant_client_local"] = base
            edge_same = next((r for r in report["edge"] if r["chunks"] == base["chunks"]), None)
            if edge_same:
                report["edge_speedup_vs_local_p50"] = {
                    m: round(
                        base["latency"][m]["all"]["p50_ms"]
                        / edge_same["latency"][m]["all"]["p50_ms"],
                        1,
                    )
                    for m in MODES
                }
    report["sparse_encoder"] = encoder_speed()
    biggest = report["edge"][-1] if report["edge"] else None
    if biggest:
        report["target"] = {
            "chunks": biggest["chunks"],
            "p50_ms_limit": 15.0,
            "hybrid_p50_ms": biggest["latency"]["hybrid"]["all"]["p50_ms"],
            "met": all(biggest["latency"][m]["all"]["p50_ms"] <= 15.0 for m in MODES),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
