"""Assistant latency: ACL-filtered retrieval at 10k/100k chunks on Qdrant Edge, and answer
latency with the small GGUF against raw llama-cpp-python, measured in one run.

    .venv/bin/python -m bench.latency [--sizes 10000,100000] [--queries 100] [--answers 5]

Retrieval: synthetic chunks from ``bench.index_latency.synthetic_points`` (random unit vectors,
Zipf words, realistic group spread), optimized like after a sync. Queries are the dev-set
questions, run through ``assistant.retrieve.Retriever.search`` (query embedding with the real
MiniLM, lexical encoding, the ACL-filtered dense search for relevance, the fused hybrid search,
per-file diversification) as a broad user (staff + eng) and a narrow one (legal). Reported:
end-to-end retrieve p50/p95 and the engine part alone.

Answers: ``Assistant.ask_stream`` over the 10k index (gate, licence, PII mask, retrieval,
budgeting with the model's tokenizer, generation, response gate, audit append on SQLite), and
the same prompt tokens through the same ``llama_cpp.Llama`` with ``create_completion`` directly.
Both start from an empty KV cache (``reset()``), runs alternate. First-token overhead = our
median first-token time minus raw's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.index_latency import USERS, synthetic_points
from bench.retrieval import DEFAULT_DEVSET, load_devset
from core.settings import Settings, load_settings
from policies.identity import Principal


def _pcts(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "p50_ms": round(statistics.median(s), 2),
        "p95_ms": round(s[int(0.95 * (len(s) - 1))], 2),
        "n": len(s),
    }


def build_index(settings: Settings, n: int, dim: int) -> dict[str, Any]:
    from ingest.index import open_index

    idx = open_index(settings)
    idx.ensure_collection(dim)
    t0 = time.perf_counter()
    for batch in synthetic_points(n, dim, seed=n):
        idx.upsert(batch)
    idx.flush()
    idx.optimize()
    info = {"chunks": idx.count(), "build_s": round(time.perf_counter() - t0, 1)}
    idx.close()
    return info


def retrieval_latency(settings: Settings, questions: list[str], n_queries: int) -> dict[str, Any]:
    from assistant.retrieve import Retriever
    from ingest.encoding.embed import load_embedder
    from ingest.encoding.sparse import encode_query
    from ingest.encoding.threads import set_threads
    from ingest.index import open_index

    set_threads(settings.retrieval.serving_torch_threads)  # as Assistant.from_settings
    idx = open_index(settings)
    try:
        r = Retriever(idx, load_embedder(settings.embedding), settings.retrieval, encode_query)
        users = {u: Principal(user_id=u, groups=g) for u, g in USERS.items()}
        for q in questions[:5]:
            r.search(q, users["broad"])  # warm-up
        total: dict[str, list[float]] = {u: [] for u in users}
        engine: dict[str, list[float]] = {u: [] for u in users}
        for i in range(n_queries):
            name = list(users)[i % len(users)]
            q = questions[i % len(questions)]
            t0 = time.perf_counter()
            res = r.search(q, users[name])
            total[name].append((time.perf_counter() - t0) * 1000)
            engine[name].append(res.timings["search_s"] * 1000)
        return {
            "retrieve_total": {
                "all": _pcts(total["broad"] + total["narrow"]),
                **{u: _pcts(v) for u, v in total.items()},
            },
            "engine_only": {
                "all": _pcts(engine["broad"] + engine["narrow"]),
                **{u: _pcts(v) for u, v in engine.items()},
            },
        }
    finally:
        idx.close()


def answer_latency(settings: Settings, questions: list[str], runs: int) -> dict[str, Any]:
    from assistant.service import Assistant
    from assistant.types import Answer

    a = Assistant.from_settings(settings)
    try:
        llm = a.llm
        chat: Any = llm.model
        llama = chat.llama
        who = Principal(user_id="bench", groups=USERS["broad"], roles=frozenset({"employee"}))
        captured: list[Any] = []
        real_stream = llm.stream

        def spy(messages: Any, *args: Any, **kwargs: Any) -> Any:
            captured.append(messages)
            return real_stream(messages, *args, **kwargs)

        llm.stream = spy  # type: ignore[method-assign]
        ours_first, ours_total, raw_first, raw_total, ours_tokens = [], [], [], [], []
        a.ask(questions[0], who)  # warm-up: loads the model, checks the licence, fills caches
        for i in range(runs):
            q = questions[(i + 1) % len(questions)]
            with chat.lock:
                llama.reset()
            t0 = time.perf_counter()
            first = None
            final: Answer | None = None
            for item in a.ask_stream(q, who):
                if isinstance(item, Answer):
                    final = item
                elif first is None:
                    first = time.perf_counter() - t0
            ours_total.append(time.perf_counter() - t0)
            assert final is not None and not final.refused, final
            ours_first.append(first or 0.0)
            ours_tokens.append(final.tokens.get("completion", 0))
            tokens, stops = chat.render(captured[-1])
            with chat.lock:
                llama.reset()
                t0 = time.perf_counter()
                first = None
                stream = llama.create_completion(
                    prompt=tokens,
                    max_tokens=settings.llm.max_answer_tokens,
                    temperature=settings.llm.temperature,
                    stop=stops,
                    stream=True,
                    seed=chat.seed,
                )
                for part in stream:
                    if first is None and part["choices"][0]["text"]:
                        first = time.perf_counter() - t0
                raw_total.append(time.perf_counter() - t0)
                raw_first.append(first or 0.0)
        llm.stream = real_stream  # type: ignore[method-assign]
        med = statistics.median
        return {
            "runs": runs,
            "prompt_tokens": len(tokens),
            "max_answer_tokens": settings.llm.max_answer_tokens,
            "completion_tokens_median": med(ours_tokens),
            "enclave_first_token_ms": round(1000 * med(ours_first), 1),
            "enclave_total_ms": round(1000 * med(ours_total), 1),
            "raw_llama_first_token_ms": round(1000 * med(raw_first), 1),
            "raw_llama_total_ms": round(1000 * med(raw_total), 1),
            "first_token_overhead_ms": round(1000 * (med(ours_first) - med(raw_first)), 1),
        }
    finally:
        a.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--answers", type=int, default=5)
    ap.add_argument(
        "--before-retrieval",
        default="",
        help="KEY=VALUE,... [retrieval] settings measured in the same run on the same index "
        "(e.g. max_chunks_per_doc=2: retrieval before a change)",
    )
    args = ap.parse_args()
    before = dict(item.split("=", 1) for item in args.before_retrieval.split(",") if item)
    sizes = [int(s) for s in args.sizes.split(",")]
    questions = [d["question"] for d in load_devset(DEFAULT_DEVSET)]
    out: dict[str, Any] = {"retrieval": {}}
    with tempfile.TemporaryDirectory(prefix="enclave-latency-") as tmp:
        for n in sizes:
            settings = load_settings(
                data_dir=Path(tmp) / f"n{n}",
                llm={"max_answer_tokens": 64, "context_window": 4096},
            )
            info = build_index(settings, n, 384)
            out["retrieval"][str(n)] = {
                **info,
                **retrieval_latency(settings, questions, args.queries),
            }
            if before:
                old_retrieval = type(settings.retrieval).model_validate(
                    {**settings.retrieval.model_dump(), **before}
                )
                old = settings.model_copy(update={"retrieval": old_retrieval})
                out["retrieval"][str(n)]["before"] = {
                    "retrieval": before,
                    **retrieval_latency(old, questions, args.queries),
                }
            if n == sizes[0] and args.answers:
                out["answer"] = answer_latency(settings, questions, args.answers)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
