"""Answer quality on employee-phrased questions: the extractive default vs the generative path.

    .venv/bin/python -m bench.answers [--split heldout] [--generative N]
        [--corpus ../shared/corpus/handbook-18f] [--work artifacts/bench-retrieval]
        [--devset bench/devset/handbook18f_employee.jsonl] [--out FILE.json]

The corpus is synced with the real pipeline into ``--work`` (the same work dir as
``bench.retrieval``: a re-run re-syncs incrementally), every question is retrieved as a member
of ``everyone`` with the default retrieval settings, and the answerers run on what retrieval
returned. Measured per answerer, on the chosen split:

- ``key_facts``: share of answerable questions whose answer contains every key fact (any of a
  fact's alternatives; text normalised as in bench/devset/check_employee_set.py);
- ``gold_cited``: share of answerable questions with a gold file among the answer's citations;
- ``unanswerable_declined`` / ``answerable_declined``: abstentions on each kind;
- ``p50_ms`` / ``p95_ms``: the answerer's time after retrieval;
- for the extractive answerer, the abstention trade-off over ``min_support``.

``--generative N`` also runs the generative path with the packaged model (llama-cpp-python,
the small Gemma 3 270M base GGUF, allowed for this measurement only) on the first N answerable
and N/4 unanswerable questions of the split. Prints JSON; ``--out`` also writes it with
per-question records.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from assistant.answerers.base import Answerer, Draft
from assistant.types import RetrievedChunk
from bench.devset.check_employee_set import normalise
from core.errors import EnclaveError
from policies.identity import Principal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "handbook-18f"
DEFAULT_DEVSET = REPO / "bench" / "devset" / "handbook18f_employee.jsonl"
DEFAULT_WORK = REPO / "artifacts" / "bench-retrieval"
SUPPORT_GRID = [round(0.20 + 0.01 * i, 2) for i in range(41)]  # 0.20 .. 0.60


def load_items(path: Path, split: str) -> list[dict[str, Any]]:
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [i for i in items if split == "all" or i["split"] == split]


def has_facts(answer: str, facts: Sequence[Sequence[str]]) -> bool:
    text = normalise(answer)
    return all(any(normalise(alt) in text for alt in alts) for alts in facts)


def run_answerer(answerer: Answerer, question: str, chunks: list[RetrievedChunk]) -> Draft:
    stream: Iterator[str | Draft] = answerer.answer(question, chunks)
    for item in stream:
        if isinstance(item, Draft):
            return item
    raise RuntimeError("the answerer ended without a Draft")


def evaluate(
    answerer: Answerer, items: list[dict[str, Any]], retrieved: dict[str, list[RetrievedChunk]]
) -> dict[str, Any]:
    records = []
    for item in items:
        chunks = retrieved[item["id"]]
        t0 = time.perf_counter()
        try:
            draft = run_answerer(answerer, item["question"], chunks)
            withheld = None
        except EnclaveError as exc:  # e.g. llm.prompt_echo: the user would get a refusal
            draft, withheld = Draft(text=""), exc.code
        took = time.perf_counter() - t0
        cited = [c.path for c in draft.citations]
        records.append(
            {
                "id": item["id"],
                "answerable": item["answerable"],
                "question": item["question"],
                "abstained": draft.abstained,
                "withheld": withheld,
                "support": round(draft.support, 4),
                "facts": bool(item["answerable"])
                and not draft.abstained
                and has_facts(draft.text, item["facts"]),
                "gold_cited": bool(set(cited) & set(item["gold"])),
                "gold_retrieved": bool({c.path for c in chunks} & set(item["gold"])),
                "cited": cited,
                "answer": draft.text,
                "grounding": draft.grounding.to_json() if draft.grounding else None,
                "ms": round(1000 * took, 2),
            }
        )
    return {"summary": summarise(records), "records": records}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    pos = [r for r in records if r["answerable"]]
    neg = [r for r in records if not r["answerable"]]
    ms = sorted(r["ms"] for r in records) or [0.0]

    def share(rows: list[dict[str, Any]], key: str) -> float:
        return round(sum(bool(r[key]) for r in rows) / max(len(rows), 1), 4)

    return {
        "answerable": len(pos),
        "unanswerable": len(neg),
        "key_facts": share(pos, "facts"),
        "gold_cited": share(pos, "gold_cited"),
        "gold_retrieved": share(pos, "gold_retrieved"),
        "unanswerable_declined": share(neg, "abstained"),
        "answerable_declined": share(pos, "abstained"),
        "withheld": share(records, "withheld"),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
    }


def support_curve(records: list[dict[str, Any]], facts_if_answered: dict[str, bool]) -> list[Any]:
    """What each ``min_support`` would give (the answer itself does not depend on it)."""
    pos = [r for r in records if r["answerable"]]
    neg = [r for r in records if not r["answerable"]]
    rows = []
    for t in SUPPORT_GRID:
        rows.append(
            {
                "min_support": t,
                "answerable_declined": round(
                    sum(r["support"] < t for r in pos) / max(len(pos), 1), 4
                ),
                "unanswerable_declined": round(
                    sum(r["support"] < t for r in neg) / max(len(neg), 1), 4
                ),
                "key_facts": round(
                    sum(r["support"] >= t and facts_if_answered[r["id"]] for r in pos)
                    / max(len(pos), 1),
                    4,
                ),
            }
        )
    return rows


def build_index(corpus: Path, work: Path) -> Any:
    from core.settings import load_settings
    from ingest.sync.run import run_sync

    work.mkdir(parents=True, exist_ok=True)
    rules = work / "access.yaml"
    rules.write_text("default: [everyone]\nrules: []\n")
    settings = load_settings(data_dir=work / "data", access_rules=rules)
    run_sync(settings, corpus, "handbook", workers=2)
    return settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--devset", type=Path, default=DEFAULT_DEVSET)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--split", choices=["dev", "heldout", "all"], default="heldout")
    ap.add_argument("--generative", type=int, default=0, metavar="N")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--config", type=Path, help="use this already synced configuration instead of --work"
    )
    ap.add_argument("--group", default="everyone", help="the group the questions are asked as")
    args = ap.parse_args()

    from assistant.answerers.extractive import ExtractiveAnswerer
    from assistant.evidence import Tuning
    from assistant.retrieve import Retriever
    from ingest.encoding.embed import load_embedder
    from ingest.encoding.sparse import encode_query
    from ingest.encoding.threads import set_threads
    from ingest.index import open_index

    set_threads(1)  # as the serving processes do (retrieval.serving_torch_threads)
    items = load_items(args.devset, args.split)
    if args.config:
        from core.settings import load_settings

        settings = load_settings(args.config)
    else:
        settings = build_index(args.corpus, args.work)
    embedder = load_embedder(settings.embedding)
    who = Principal(user_id="bench", groups=frozenset({args.group}))
    index = open_index(settings)
    out: dict[str, Any] = {"split": args.split, "questions": len(items), "answerers": {}}
    try:
        retriever = Retriever(index, embedder, settings.retrieval, encode_query)
        retrieved = {}
        for i in items:  # what the request pipeline gives the answerer (assistant/request.py)
            res = retriever.search(i["question"], who, extra=settings.answer.extra_chunks)
            retrieved[i["id"]] = res.chunks + res.more
    finally:
        index.close()
    extractive = ExtractiveAnswerer(embedder, Tuning(min_support=-1.0))
    evaluate(extractive, items[:3], retrieved)  # warm the caches' code paths, not the data
    ungated = evaluate(extractive, items, retrieved)
    facts_if_answered = {r["id"]: r["facts"] for r in ungated["records"]}
    tuned = ExtractiveAnswerer(embedder)
    result = evaluate(tuned, items, retrieved)
    result["support_curve"] = support_curve(ungated["records"], facts_if_answered)
    out["answerers"]["extractive"] = result
    if args.generative:
        out["answerers"]["generative_packaged"] = _generative(settings, items, retrieved, args)
    summary = {name: r["summary"] for name, r in out["answerers"].items()}
    printable = {**out, "answerers": summary}
    printable["support_curve"] = result["support_curve"]
    print(json.dumps(printable, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False))


def _generative(
    settings: Any,
    items: list[dict[str, Any]],
    retrieved: dict[str, list[RetrievedChunk]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    from assistant.answerers.generative import GenerativeAnswerer
    from assistant.evidence import Evidence
    from assistant.llm import load_llm
    from ingest.encoding.embed import load_embedder

    cfg = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"allow_base_model": True})}
    )
    pos = [i for i in items if i["answerable"]][: args.generative]
    neg = [i for i in items if not i["answerable"]][: max(1, args.generative // 4)]
    evidence = Evidence(load_embedder(cfg.embedding))
    answerer = GenerativeAnswerer(load_llm(cfg), evidence, cfg)
    return evaluate(answerer, pos + neg, retrieved)


if __name__ == "__main__":
    main()
