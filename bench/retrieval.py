"""Retrieval quality on the 18F handbook: Enclave's default before and after, every variant
tried, and the textbook LangChain pipeline, all measured in one run.

    .venv/bin/python -m bench.retrieval [--split heldout] [--work artifacts/bench-retrieval]
        [--corpus ../shared/corpus/handbook-18f] [--misses FILE] [--only NAME,NAME]
        [--no-langchain]

Sets: ``bench/devset/handbook18f_employee.jsonl`` (employee-phrased questions with gold files;
``--split dev`` for tuning, ``heldout`` — the default — for the report) and the old
``bench/devset/handbook18f.jsonl`` as a regression check.

Enclave's side: for every *index variant* (ingest settings: front matter, keyword line, chunk
size) the corpus is synced with ``ingest.sync.run.run_sync`` (real parser workers, chunker,
embedder, Qdrant Edge; an access rule grants everything to ``everyone``) into its own data dir
under ``--work`` (kept, so a re-run re-syncs incrementally), then every *system* on that index
is queried through ``assistant.retrieve.Retriever.search`` as a member of ``everyone`` — the one
ACL-filtered search — with its retrieval settings, k = 10 (hit@10) of which the first 5 are what
the assistant gets. A hit = a gold file among the first k chunks; MRR@5 uses the first gold
file's rank.

Baseline: each file read as text, ``RecursiveCharacterTextSplitter(1000, 200)``, the same
embedding model, cosine top-k in langchain-core's ``InMemoryVectorStore``.

Prints JSON: per system hit@1, hit@5, MRR@5, hit@10 and p50 latency on the chosen split, the
old set for the default before/after and the baseline, and the abstention sweep of the default
on the employee split. ``--misses`` writes every question whose first gold file is not at
rank 1, per system, with the top-5 paths.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from core.settings import RetrievalSettings
from ingest.index.base import SearchMode
from policies.identity import Principal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "handbook-18f"
DEFAULT_DEVSET = REPO / "bench" / "devset" / "handbook18f.jsonl"
EMPLOYEE_SET = REPO / "bench" / "devset" / "handbook18f_employee.jsonl"
DEFAULT_WORK = REPO / "artifacts" / "bench-retrieval"
K = 5
DEPTH = 10
THRESHOLDS = [round(0.20 + 0.025 * i, 3) for i in range(17)]  # 0.20 .. 0.60

# Ingest settings of each index variant ("before" = how Enclave ingested until this change).
INDEXES: dict[str, dict[str, Any]] = {
    "before": {"front_matter": False, "chunk_keywords": False},
    "front_matter": {"front_matter": True, "chunk_keywords": False},
    "front_matter_keywords": {"front_matter": True, "chunk_keywords": True},
    "front_matter_keywords_700": {
        "front_matter": True,
        "chunk_keywords": True,
        "chunk_max_chars": 700,
        "chunk_overlap_chars": 100,
    },
}

_FILLER = re.compile(
    r"\b(?:hey|hi|hello|okay|ok|um+|uh+|lol|thanks|please|quick question|i was wondering"
    r"(?: if| whether)?|do you know(?: if| whether)?|kind of|sort of|kinda|basically|actually"
    r"|really|just|literally|honestly|is that a thing|at some point|or something)\b[,:!]?",
    re.IGNORECASE,
)


def strip_filler(question: str) -> str:
    """The question without conversational filler ("kind of", "really", "is that a thing")."""
    out = re.sub(r"\s+([?,.!])", r"\1", " ".join(_FILLER.sub(" ", question).split())).strip(" ,")
    return out if len(out.split()) >= 3 else question


@dataclass(frozen=True)
class System:
    """One row of the table: an index variant queried with some retrieval settings."""

    name: str
    index: str
    retrieval: dict[str, Any] = field(default_factory=dict)
    mode: SearchMode | None = None
    query: Callable[[str], str] | None = None
    note: str = ""


BEFORE: dict[str, Any] = {"files_first": False, "fusion": "rrf"}
"""Retrieval settings of today's default that this change turned on."""

SYSTEMS: list[System] = [
    System("before_default", "before", BEFORE, note="hybrid RRF, best chunks in rank order"),
    System("before_dense", "before", BEFORE, mode="dense"),
    System("before_lexical", "before", BEFORE, mode="lexical"),
    System("before_dbsf", "before", {**BEFORE, "fusion": "dbsf"}),
    System("before_filler_removed", "before", BEFORE, query=strip_filler),
    System("before_candidates_100", "before", {**BEFORE, "candidates": 100}),
    System("before_files_first", "before", {**BEFORE, "files_first": True}),
    System("front_matter", "front_matter", BEFORE),
    System("front_matter_keywords", "front_matter_keywords", BEFORE),
    System("front_matter_keywords_700", "front_matter_keywords_700", BEFORE),
    System("after_rrf", "front_matter_keywords", {"fusion": "rrf"}),
    System("after_candidates_100", "front_matter_keywords", {"candidates": 100}),
    System(
        "after_default",
        "front_matter_keywords",
        note="kept: front matter + keyword line, files first, DBSF",
    ),
]
DEFAULT_AFTER = "after_default"
"""The system that is Enclave's default after this change (its index and retrieval settings)."""


def load_devset(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rank_of(paths: Sequence[str], gold: Sequence[str]) -> int | None:
    return next((r for r, p in enumerate(paths, start=1) if p in gold), None)


def metrics(ranked: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """hit@1, hit@5, MRR@5, hit@10 over questions with gold files (paths in rank order)."""
    ranks = [rank_of(paths, g) for paths, g in zip(ranked, gold, strict=True)]
    n = max(len(ranks), 1)

    def hit(k: int) -> float:
        return round(sum(1 for r in ranks if r is not None and r <= k) / n, 4)

    mrr = sum(1.0 / r for r in ranks if r is not None and r <= K) / n
    return {"hit@1": hit(1), f"hit@{K}": hit(K), f"mrr@{K}": round(mrr, 4), "hit@10": hit(10)}


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


def build_enclave_index(
    corpus: Path, work: Path, ingest: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    from core.settings import load_settings
    from ingest.sync.run import run_sync

    work.mkdir(parents=True, exist_ok=True)
    rules = work / "access.yaml"
    rules.write_text("default: [everyone]\nrules: []\n")
    settings = load_settings(data_dir=work / "data", access_rules=rules, ingest=ingest or {})
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
    corpus: Path, embedder: Any, questions: list[str], k: int = K
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
    ranked = [[d.metadata["path"] for d in store.similarity_search(q, k=k)] for q in questions]
    return ranked, {"chunks": len(docs), "embed_s": round(build_s, 1)}


def run_system(
    index: Any, embedder: Any, base: RetrievalSettings, system: System, questions: list[str]
) -> tuple[list[list[str]], list[float], float]:
    """Ranked paths (k = DEPTH), best-cosine relevance per question, p50 latency in ms."""
    from assistant.retrieve import Retriever
    from ingest.encoding.sparse import encode_query

    retriever = Retriever(index, embedder, base.model_copy(update=system.retrieval), encode_query)
    who = Principal(user_id="bench", groups=frozenset({"everyone"}))
    ranked, relevance, lat = [], [], []
    for q in questions:
        text = system.query(q) if system.query else q
        t0 = time.perf_counter()
        res = retriever.search(text, who, k=DEPTH, mode=system.mode)
        lat.append(time.perf_counter() - t0)
        ranked.append([c.path for c in res.chunks])
        relevance.append(res.relevance)
    lat.sort()
    return ranked, relevance, round(1000 * lat[len(lat) // 2], 2)


def _misses(
    rows: list[dict[str, Any]], ranked: list[list[str]], system: str
) -> list[dict[str, Any]]:
    out = []
    for d, paths in zip(rows, ranked, strict=True):
        rank = rank_of(paths, d["gold"])
        if rank != 1:
            out.append(
                {
                    "system": system,
                    "id": d["id"],
                    "question": d["question"],
                    "gold": d["gold"],
                    "rank": rank,
                    "top5": paths[:K],
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--split", choices=["dev", "heldout"], default="heldout")
    ap.add_argument("--misses", type=Path, default=None, help="write per-question misses here")
    ap.add_argument("--only", default="", help="comma-separated system names (default: all)")
    ap.add_argument("--no-langchain", action="store_true", help="skip the LangChain baseline")
    args = ap.parse_args()

    from ingest.encoding.embed import load_embedder
    from ingest.encoding.threads import set_threads
    from ingest.index import open_index

    employee = [d for d in load_devset(EMPLOYEE_SET) if d["split"] == args.split]
    answerable = [d for d in employee if d["gold"]]
    unanswerable = [d for d in employee if not d["gold"]]
    old = [d for d in load_devset(DEFAULT_DEVSET) if d["gold"]]
    wanted = {n for n in args.only.split(",") if n}
    systems = [s for s in SYSTEMS if not wanted or s.name in wanted]
    out: dict[str, Any] = {
        "corpus": str(args.corpus),
        "split": args.split,
        "questions": {
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "old_set": len(old),
        },
        "indexes": {},
        "systems": {},
        "old_set": {},
    }
    misses: list[dict[str, Any]] = []
    embedder = None
    for index_name in dict.fromkeys(s.index for s in systems):
        settings, info = build_enclave_index(
            args.corpus, args.work / index_name, INDEXES[index_name]
        )
        if embedder is None:
            set_threads(settings.retrieval.serving_torch_threads)  # as the assistant serves
            embedder = load_embedder(settings.embedding)
        index = open_index(settings)
        try:
            info["points"] = index.count()
            out["indexes"][index_name] = {"ingest": INDEXES[index_name], **info}
            for system in (s for s in systems if s.index == index_name):
                ranked, rel, p50 = run_system(
                    index, embedder, settings.retrieval, system, [d["question"] for d in answerable]
                )
                out["systems"][system.name] = {
                    **metrics(ranked, [d["gold"] for d in answerable]),
                    "p50_ms": p50,
                    "index": index_name,
                    "retrieval": system.retrieval,
                    **({"mode": system.mode} if system.mode else {}),
                    **({"note": system.note} if system.note else {}),
                }
                misses.extend(_misses(answerable, ranked, system.name))
                if system.name in ("before_default", DEFAULT_AFTER):
                    old_ranked, _, _ = run_system(
                        index, embedder, settings.retrieval, system, [d["question"] for d in old]
                    )
                    out["old_set"][system.name] = metrics(old_ranked, [d["gold"] for d in old])
                if system.name == DEFAULT_AFTER:
                    _, neg, _ = run_system(
                        index,
                        embedder,
                        settings.retrieval,
                        system,
                        [d["question"] for d in unanswerable],
                    )
                    out["abstention"] = abstention(rel, neg)
        finally:
            index.close()
    if embedder is not None and not args.no_langchain:
        ranked, info = langchain_baseline(
            args.corpus, embedder, [d["question"] for d in answerable + old], k=DEPTH
        )
        n = len(answerable)
        out["systems"]["langchain_textbook"] = {
            **metrics(ranked[:n], [d["gold"] for d in answerable]),
            **info,
        }
        out["old_set"]["langchain_textbook"] = metrics(ranked[n:], [d["gold"] for d in old])
        misses.extend(_misses(answerable, ranked[:n], "langchain_textbook"))
    if args.misses:
        args.misses.parent.mkdir(parents=True, exist_ok=True)
        args.misses.write_text(json.dumps(misses, indent=1))
        out["misses_file"] = str(args.misses)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
