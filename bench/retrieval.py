"""Retrieval quality on the 18F handbook: dense vs lexical vs hybrid vs the textbook LangChain
pipeline, plus the abstain-threshold trade-off, all measured in one run.

    .venv/bin/python -m bench.retrieval [--corpus ../shared/corpus/handbook-18f]
        [--devset bench/devset/handbook18f.jsonl] [--work artifacts/bench-retrieval]

Enclave's side: the corpus is synced with ``ingest.sync.run.run_sync`` (real parser, chunker,
embedder, Qdrant Edge; an access rule grants everything to ``everyone``) and queried through
``assistant.retrieve.Retriever`` as a member of ``everyone`` (k=5, at most
``max_chunks_per_doc`` chunks per file). The work dir keeps the index, so a re-run re-syncs
incrementally.

Baseline: each file read as text, ``RecursiveCharacterTextSplitter(1000, 200)``, the same
embedding model, cosine top-5 in langchain-core's ``InMemoryVectorStore``.

Prints JSON: hit@5 and MRR@5 per system (a hit = a gold file among the top 5), abstention
figures per threshold (false abstain on answerable questions vs answered unanswerable ones) and
the threshold that minimises their sum.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from core.settings import RetrievalSettings
from ingest.index.base import SearchMode
from policies.identity import Principal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "handbook-18f"
DEFAULT_DEVSET = REPO / "bench" / "devset" / "handbook18f.jsonl"
DEFAULT_WORK = REPO / "artifacts" / "bench-retrieval"
K = 5
THRESHOLDS = [round(0.20 + 0.025 * i, 3) for i in range(17)]  # 0.20 .. 0.60


def load_devset(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score(ranked: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """hit@K and MRR@K over questions with gold files; ``ranked`` holds paths in rank order."""
    hits, rr = 0, 0.0
    for paths, g in zip(ranked, gold, strict=True):
        for rank, p in enumerate(paths[:K], start=1):
            if p in g:
                hits += 1
                rr += 1.0 / rank
                break
    n = max(len(gold), 1)
    return {f"hit@{K}": round(hits / n, 4), f"mrr@{K}": round(rr / n, 4)}


def abstention(rel_pos: list[float], rel_neg: list[float]) -> dict[str, Any]:
    rows = []
    for t in THRESHOLDS:
        fa = sum(r < t for r in rel_pos) / max(len(rel_pos), 1)
        au = sum(r >= t for r in rel_neg) / max(len(rel_neg), 1)
        rows.append(
            {"threshold": t, "false_abstain": round(fa, 4), "answered_unanswerable": round(au, 4)}
        )
    best = min(
        rows, key=lambda r: (r["false_abstain"] + r["answered_unanswerable"], r["threshold"])
    )
    return {
        "sweep": rows,
        "best": best,
        "relevance_answerable": {
            "min": round(min(rel_pos), 4),
            "median": round(sorted(rel_pos)[len(rel_pos) // 2], 4),
        },
        "relevance_unanswerable": {
            "max": round(max(rel_neg), 4) if rel_neg else None,
            "values": [round(r, 4) for r in rel_neg],
        },
    }


def build_enclave_index(corpus: Path, work: Path) -> tuple[Any, dict[str, Any]]:
    from core.settings import load_settings
    from ingest.sync.run import run_sync

    work.mkdir(parents=True, exist_ok=True)
    rules = work / "access.yaml"
    rules.write_text("default: [everyone]\nrules: []\n")
    settings = load_settings(data_dir=work / "data", access_rules=rules)
    t0 = time.perf_counter()
    summary = run_sync(settings, corpus, "handbook", workers=2)
    return settings, {
        "sync_s": round(time.perf_counter() - t0, 1),
        "files_failed": summary.failed_count,
        "chunks_added_this_run": summary.chunks,
    }


class _LCEmbeddings(Embeddings):
    """langchain-core ``Embeddings`` over Enclave's embedder (same model, same normalisation)."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return list(self.embedder.embed_documents(texts))

    def embed_query(self, text: str) -> list[float]:
        return list(self.embedder.embed_query(text))


def langchain_baseline(
    corpus: Path, embedder: Any, questions: list[str]
) -> tuple[list[list[str]], dict[str, Any]]:
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    docs: list[Document] = []
    for path in sorted(corpus.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in {".md", ".txt", ".html"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(corpus).as_posix()
        docs.extend(splitter.create_documents([text], metadatas=[{"path": rel}]))
    t0 = time.perf_counter()
    store = InMemoryVectorStore(_LCEmbeddings(embedder))
    store.add_documents(docs)
    build_s = time.perf_counter() - t0
    ranked = [[d.metadata["path"] for d in store.similarity_search(q, k=K)] for q in questions]
    return ranked, {"chunks": len(docs), "embed_s": round(build_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--devset", type=Path, default=DEFAULT_DEVSET)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = ap.parse_args()

    from assistant.retrieve import Retriever
    from ingest.encoding.embed import load_embedder
    from ingest.encoding.sparse import encode_query
    from ingest.index import open_index

    dev = load_devset(args.devset)
    answerable = [d for d in dev if d["gold"]]
    unanswerable = [d for d in dev if not d["gold"]]
    settings, sync_info = build_enclave_index(args.corpus, args.work)
    embedder = load_embedder(settings.embedding)
    who = Principal(user_id="bench", groups=frozenset({"everyone"}))
    out: dict[str, Any] = {
        "corpus": str(args.corpus),
        "questions": {"answerable": len(answerable), "unanswerable": len(unanswerable)},
        "enclave_index": sync_info,
        "systems": {},
    }
    gold = [d["gold"] for d in answerable]
    index = open_index(settings)
    try:
        out["enclave_index"]["points"] = index.count()
        relevance: dict[str, float] = {}
        variants: list[tuple[str, SearchMode, RetrievalSettings]] = [
            ("dense", "dense", settings.retrieval),
            ("lexical", "lexical", settings.retrieval),
            ("hybrid", "hybrid", settings.retrieval.model_copy(update={"fusion": "rrf"})),
            ("hybrid_dbsf", "hybrid", settings.retrieval.model_copy(update={"fusion": "dbsf"})),
        ]
        for name, mode, cfg in variants:
            retriever = Retriever(index, embedder, cfg, encode_query)
            ranked, lat = [], []
            for d in answerable:
                t0 = time.perf_counter()
                res = retriever.search(d["question"], who, k=K, mode=mode, threshold=0.0)
                lat.append(time.perf_counter() - t0)
                ranked.append([c.path for c in res.chunks])
                relevance[d["id"]] = res.relevance
            for d in unanswerable:
                relevance[d["id"]] = retriever.search(d["question"], who, k=K, mode=mode).relevance
            lat.sort()
            out["systems"][f"enclave_{name}"] = {
                **score(ranked, gold),
                "p50_ms": round(1000 * lat[len(lat) // 2], 2),
            }
    finally:
        index.close()
    base_ranked, base_info = langchain_baseline(
        args.corpus, embedder, [d["question"] for d in answerable]
    )
    out["systems"]["langchain_textbook"] = {**score(base_ranked, gold), **base_info}
    out["abstention"] = abstention(
        [relevance[d["id"]] for d in answerable], [relevance[d["id"]] for d in unanswerable]
    )
    hy, lc = out["systems"]["enclave_hybrid"], out["systems"]["langchain_textbook"]
    out["hybrid_beats_langchain"] = {
        f"hit@{K}": hy[f"hit@{K}"] > lc[f"hit@{K}"],
        f"mrr@{K}": hy[f"mrr@{K}"] > lc[f"mrr@{K}"],
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
