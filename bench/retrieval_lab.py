"""Ranking ideas that did not land, re-scored in NumPy on the points of a synced index.

    .venv/bin/python -m bench.retrieval_lab [--split heldout] [--work artifacts/bench-retrieval]
        [--index front_matter_keywords]

Run ``python -m bench.retrieval`` first: this reads the index it synced under
``<work>/<index>`` (every point with its vectors, through ``scroll_points``) and re-implements
the default ranking outside the engine — dense cosine top-160 and BM25 over the stored sparse
vectors with the engine's IDF (``ln(1 + (N - n + 0.5) / (n + 0.5))``), RRF with k = 60, top 40,
per-file diversification — so variants that would need new index fields or a second engine
query can be tried without building them. ``lab_baseline`` is that re-implementation; compare it
with the engine's row of the same index in ``bench.retrieval`` (they agree within a question or
two: the engine's HNSW is approximate and breaks rank ties differently).

Variants (each alone, on top of ``lab_baseline``):

- ``snowball``: the lexical side with a Snowball (Porter2) stemmer instead of the plural-only one
  (needs PyStemmer; skipped if it is not installed);
- ``doc_field_lexical``: a second lexical field per chunk with its document's title, every
  heading and the words of its path, weight 0.3 (BM25F-style);
- ``doc_dense_max``: a third RRF list ranking chunks by their file's best dense score;
- ``dense_weight_1_5``: weighted RRF, dense 1.5 : lexical 1;
- ``overview_penalty``: fused score x 0.9 for overview pages (index/README/table-of-contents
  pages, and pages named like a folder beside them);
- ``dense_prf``: the dense query moved towards its top-3 chunks (Rocchio, alpha 0.3).

Prints JSON: hit@1, hit@5, MRR@5, hit@10 per variant on the split, and on the old set.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.retrieval import DEFAULT_DEVSET, DEFAULT_WORK, EMPLOYEE_SET, load_devset, metrics
from ingest.encoding import sparse as lexical

PREFETCH, CANDIDATES, RRF_K, DEPTH = 160, 40, 60, 10
Tokenizer = Callable[[str], list[str]]


class Lab:
    """The points of one index in memory: dense matrix, inverted lists, document fields."""

    def __init__(self, points: list[dict[str, Any]]) -> None:
        self.points = points
        self.dense = np.asarray([p["dense"] for p in points], dtype=np.float32)
        self.paths = [p["path"] for p in points]
        self.docs = [p["doc_id"] for p in points]
        heads: dict[str, set[str]] = defaultdict(set)
        for p in points:
            heads[p["doc_id"]].update(h for h in (p["section"] or "").split(" > ") if h)
        self.doc_text = {
            p["doc_id"]: " ".join([p["title"] or "", *sorted(heads[p["doc_id"]]), _path_words(p)])
            for p in points
        }
        dirs = {os.path.dirname(p) for p in self.paths}
        self.overview = [_is_overview(p, dirs) for p in self.paths]
        self.tokenize: Tokenizer = lexical.tokenize
        self.postings: dict[str, list[tuple[int, float]]] = {}
        self.idf: dict[str, float] = {}

    def build_lexical(self, tokenize: Tokenizer, doc_field: bool = False) -> None:
        self.tokenize = tokenize
        post: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, p in enumerate(self.points):
            tokens = tokenize(p["text"])
            if tokens:
                norm = lexical.K1 * (1 - lexical.B + lexical.B * len(tokens) / lexical.AVG_DOC_LEN)
                for t, tf in Counter(tokens).items():
                    post[t].append((i, tf * (lexical.K1 + 1) / (tf + norm)))
            if doc_field:
                for t in set(tokenize(self.doc_text[p["doc_id"]])):
                    post["doc:" + t].append((i, 1.0))
        n = len(self.points)
        self.postings = dict(post)
        self.idf = {t: math.log(1 + (n - len(v) + 0.5) / (len(v) + 0.5)) for t, v in post.items()}

    def lexical_scores(self, question: str, doc_weight: float = 0.0) -> np.ndarray:
        scores = np.zeros(len(self.points), dtype=np.float32)
        for t in set(self.tokenize(question)):
            for key, w in ((t, 1.0), ("doc:" + t, doc_weight)):
                for i, v in self.postings.get(key, []) if w else []:
                    scores[i] += w * self.idf[key] * v
        return scores


def _path_words(point: dict[str, Any]) -> str:
    stem = str(point["path"]).rsplit(".", 1)[0]
    return " ".join(w for w in re.split(r"[/_\-.]+", stem) if w not in ("", "pages", "index"))


def _is_overview(path: str, dirs: set[str]) -> bool:
    stem = os.path.basename(path).rsplit(".", 1)[0].casefold()
    parent = os.path.basename(os.path.dirname(path)).casefold()
    named = stem in ("index", "_index", "readme", "overview") or "table-of-contents" in stem
    return named or stem == parent or os.path.join(os.path.dirname(path), stem) in dirs


def _top(scores: np.ndarray, n: int) -> list[int]:
    idx = np.argpartition(-scores, min(n, len(scores) - 1))[:n]
    return [int(i) for i in idx[np.argsort(-scores[idx])]]


def _rrf(lists: list[list[int]], weights: list[float]) -> dict[int, float]:
    fused: dict[int, float] = defaultdict(float)
    for ranked, w in zip(lists, weights, strict=True):
        for r, i in enumerate(ranked, start=1):
            fused[i] += w / (RRF_K + r)
    return fused


def rank(lab: Lab, question: str, qvec: np.ndarray, variant: str) -> list[str]:
    if variant == "dense_prf":
        top = _top(lab.dense @ qvec, 3)
        qvec = qvec + 0.3 * lab.dense[top].mean(axis=0)
        qvec = qvec / np.linalg.norm(qvec)
    dense = lab.dense @ qvec
    lex = lab.lexical_scores(question, 0.3 if variant == "doc_field_lexical" else 0.0)
    dense_list = _top(dense, PREFETCH)
    lex_list = [i for i in _top(lex, PREFETCH) if lex[i] > 0]
    lists, weights = [dense_list, lex_list], [1.5 if variant == "dense_weight_1_5" else 1.0, 1.0]
    fused = _rrf(lists, weights)
    if variant == "doc_dense_max":
        best: dict[str, float] = {}
        for i in dense_list:
            best[lab.docs[i]] = max(best.get(lab.docs[i], -1.0), float(dense[i]))
        order = {d: r for r, d in enumerate(sorted(best, key=lambda d: -best[d]), start=1)}
        for i in list(fused):
            if lab.docs[i] in order:
                fused[i] += 1.0 / (RRF_K + order[lab.docs[i]])
    if variant == "overview_penalty":
        fused = {i: s * (0.9 if lab.overview[i] else 1.0) for i, s in fused.items()}
    ordered = sorted(fused, key=lambda i: -fused[i])[:CANDIDATES]
    seen: Counter[str] = Counter()
    out: list[str] = []
    for i in ordered:
        if seen[lab.docs[i]] < 2:
            seen[lab.docs[i]] += 1
            out.append(lab.paths[i])
        if len(out) >= DEPTH:
            break
    return out


def snowball_tokenizer() -> Tokenizer | None:
    try:
        import Stemmer  # PyStemmer: optional, only this experiment uses it
    except ImportError:
        return None
    stem = Stemmer.Stemmer("english").stemWord

    def tokenize(text: str) -> list[str]:
        words = lexical._WORD.findall(unicodedata.normalize("NFKC", text).casefold())
        return [
            w if w.isdigit() else stem(w)
            for w in words
            if w not in lexical.STOPWORDS
            and len(w) <= lexical.MAX_TOKEN_LEN
            and not (len(w) == 1 and w.isalpha())
        ]

    return tokenize


VARIANTS = [
    "lab_baseline",
    "snowball",
    "doc_field_lexical",
    "doc_dense_max",
    "dense_weight_1_5",
    "overview_penalty",
    "dense_prf",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--index", default="front_matter_keywords")
    ap.add_argument("--split", choices=["dev", "heldout"], default="heldout")
    args = ap.parse_args()

    from core.settings import load_settings
    from ingest.encoding.embed import load_embedder
    from ingest.index import open_index

    where = args.work / args.index
    settings = load_settings(data_dir=where / "data", access_rules=where / "access.yaml")
    index = open_index(settings)
    try:
        points = [{"dense": p.dense, **p.payload} for batch in index.scroll_points() for p in batch]
    finally:
        index.close()
    lab = Lab(points)
    sets = {
        args.split: [
            d for d in load_devset(EMPLOYEE_SET) if d["split"] == args.split and d["gold"]
        ],
        "old_set": [d for d in load_devset(DEFAULT_DEVSET) if d["gold"]],
    }
    embedder = load_embedder(settings.embedding)
    vectors = {
        name: np.asarray(embedder.embed_documents([d["question"] for d in rows]), np.float32)
        for name, rows in sets.items()
    }
    out: dict[str, Any] = {"index": args.index, "points": len(points), "variants": {}}
    snowball = snowball_tokenizer()
    for variant in VARIANTS:
        if variant == "snowball" and snowball is None:
            out["variants"][variant] = {"skipped": "PyStemmer is not installed"}
            continue
        tokenize = snowball if variant == "snowball" and snowball else lexical.tokenize
        lab.build_lexical(tokenize, doc_field=variant == "doc_field_lexical")
        out["variants"][variant] = {
            name: metrics(
                [rank(lab, d["question"], vectors[name][i], variant) for i, d in enumerate(rows)],
                [d["gold"] for d in rows],
            )
            for name, rows in sets.items()
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
