"""Audit log throughput: appends/s on SQLite and PostgreSQL, verify records/s, before and
after records were signed and anchored outside the database (issue 14).

    .venv/bin/python -m bench.audit [--records 2000] [--pg-url URL] [--no-pg]

For each database: a fresh database per run; ``--records`` appends of an ``ask`` record shaped
like the assistant's (100-char question, 600-char answer, 5 retrieved chunks, 2 decisions, PII
masking on). Measured in the same run and database:

- ``baseline``: the same rows inserted one transaction each without head lock or hash;
- ``before``: the previous append (head lock, sha256 chain, no signature, no external anchor),
  replayed here statement for statement into a second fresh database of the same kind, 1
  writer, alternating with ``after`` in halves so a load change during the run hits both;
- ``after``: :meth:`AuditLog.append` as shipped (ed25519 signature per record, anchor line to
  the default anchor file), by 1 writer, 8 writer threads and 8 writer processes; and 1 writer
  with a second database as an extra anchor store;
- ``verify``: before = the sha256 walk alone; after = ``verify()`` (walk, signatures, anchors).

PostgreSQL's URL comes from ``--pg-url``, ``$ENCLAVE_TEST_PG_URL`` or ``/tmp/pg_url``; each run
creates and drops its own databases. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from core.db import dispose_engines
from core.settings import load_settings
from policies.audit import _INSERT_RECORD, _UPDATE_HEAD, begin_locked
from policies.audit_chain import GENESIS, ChainWalker, canonical_json, chain_hash, record_dict
from policies.decision import Decision
from policies.identity import Principal
from policies.service import PolicyService
from policies.tables import AuditRecordRow

QUESTION = (
    "What is the notice period for terminating a supplier contract, and who must sign it? "
    "Ref 2024-118"
)
ANSWER = (
    "The standard supplier agreement sets a notice period of 90 days [1], which must be given "
    "in writing to the supplier's registered address. Contracts above 250,000 EUR also need the "
    "CFO's countersignature [2]; below that threshold the budget owner signs alone. If the "
    "supplier handles personal data, the data protection officer must confirm the deletion "
    "plan before the notice is sent [3]. Early termination for cause follows section 14 of the "
    "agreement and does not need the full notice period, but legal must review it first [1]. "
    "Contact procurement for the template letter."
)
RETRIEVED = [{"doc_id": f"doc{i:04d}", "chunk_id": f"chunk{i:06d}"} for i in range(5)]
PRINCIPALS = [Principal(f"user{i}", frozenset({"staff", f"dept{i % 4}"})) for i in range(16)]


def _append_one(svc: PolicyService, i: int) -> None:
    d = Decision.allow("usage.ok", svc.version).to_dict()
    svc.audit.append(
        "ask",
        principal=PRINCIPALS[i % len(PRINCIPALS)],
        question=QUESTION,
        retrieved=RETRIEVED,
        model_name="gemma-3-270m-q4_k_m",
        model_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        policy_version=svc.version,
        decisions=[d, d],
        answer=ANSWER,
        latency_ms=1834.0,
        prompt_tokens=1650,
        completion_tokens=140,
        details={"outcome": "answered"},
    )


def _append_before(svc: PolicyService, i: int) -> None:
    """The append of the previous release: head lock, sha256 chain, no signature, no anchor."""
    log = svc.audit
    d = Decision.allow("usage.ok", svc.version).to_dict()
    q, q_hmac = log._text(QUESTION)
    a, a_hmac = log._text(ANSWER)
    values: dict[str, Any] = {
        "event_type": "ask",
        "groups": canonical_json(sorted(PRINCIPALS[i % len(PRINCIPALS)].groups)),
        "question": q,
        "question_hmac": q_hmac,
        "retrieved": canonical_json(RETRIEVED),
        "model_name": "gemma-3-270m-q4_k_m",
        "model_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "policy_version": svc.version,
        "decisions": canonical_json([d, d]),
        "answer": a,
        "answer_hmac": a_hmac,
        "latency_ms": 1834,
        "prompt_tokens": 1650,
        "completion_tokens": 140,
        "details": canonical_json({"outcome": "answered"}),
    }
    with svc.engine.connect() as conn:
        head = begin_locked(conn)
        values["user_pseudonym"] = log._pseudonym(conn, PRINCIPALS[i % 16].user_id, True)
        row = AuditRecordRow(
            id=head.last_id + 1, ts=datetime.now(UTC), prev_hash=head.last_hash, **values
        )
        row.hash = chain_hash(head.last_hash, record_dict(row))
        conn.execute(
            _INSERT_RECORD,
            values | {"id": row.id, "ts": row.ts, "prev_hash": row.prev_hash, "hash": row.hash},
        )
        conn.execute(_UPDATE_HEAD, {"new_id": row.id, "new_hash": row.hash})
        conn.commit()


def _verify_before(svc: PolicyService) -> int:
    """The previous release's verification: the sha256 walk, no signatures, no anchors."""
    head_id, _ = svc.audit.head()
    walker = ChainWalker(GENESIS, {}, lambda _row: None, head_id)
    walker.feed(svc.audit.iter_rows())
    if walker.failure is not None:
        raise RuntimeError(f"chain does not verify: {walker.failure}")
    return walker.checked


def _config(tmp: Path, name: str, db_url: str | None, anchor_db_url: str | None = None) -> Path:
    """A config named ``name``; its data dir (keys, anchor file) is per log, not per config."""
    cfg = tmp / f"{name}.toml"
    lines = [f'data_dir = "{tmp / name.removesuffix("-anchor-db")}"']
    if db_url:
        lines.append(f'database_url = "{db_url}"')
    if anchor_db_url:
        lines += ["[policy]", f'audit_anchor_database_url = "{anchor_db_url}"']
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@contextmanager
def _database(kind: str, pg_base: str | None) -> Iterator[tuple[Path, Path, Path]]:
    """Config files on fresh databases: the log (and, in a second config, the same log with a
    second database as extra anchor store), and a separate log for the previous release's
    appends (unsigned records may not follow signed ones in one chain)."""
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        t = Path(tmp)
        if kind == "sqlite":
            main = f"sqlite:///{t / 'main.db'}"
            yield (
                _config(t, "main", main),
                _config(t, "main-anchor-db", main, f"sqlite:///{t / 'anchors.db'}"),
                _config(t, "before", f"sqlite:///{t / 'before.db'}"),
            )
            dispose_engines()
            return
        assert pg_base is not None
        names = [f"enclave_bench_{uuid.uuid4().hex[:10]}" for _ in range(3)]
        admin = create_engine(
            pg_base.replace("postgresql://", "postgresql+psycopg://", 1),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        base = pg_base.rsplit("/", 1)[0]
        try:
            main, anchors, before = (f"{base}/{n}" for n in names)
            yield (
                _config(t, "main", main),
                _config(t, "main-anchor-db", main, anchors),
                _config(t, "before", before),
            )
        finally:
            dispose_engines()
            with admin.connect() as conn:
                for name in names:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def _threads(n: int, records: int, work: Callable[[int], None]) -> float:
    per = records // n
    barrier = threading.Barrier(n + 1)

    def run(w: int) -> None:
        barrier.wait()
        for i in range(per):
            work(w * per + i)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _proc_writer(config: str, w: int, per: int, barrier: Any) -> None:
    svc = PolicyService.from_settings(load_settings(config))
    barrier.wait()
    for i in range(per):
        _append_one(svc, w * per + i)


def _processes(config: Path, n: int, records: int) -> float:
    dispose_engines()
    ctx = mp.get_context("fork")
    per = records // n
    barrier = ctx.Barrier(n + 1)
    procs = [
        ctx.Process(target=_proc_writer, args=(str(config), w, per, barrier)) for w in range(n)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    if any(p.exitcode for p in procs):
        raise RuntimeError("a writer process failed")
    return elapsed


def _baseline(svc: PolicyService, records: int) -> float:
    """Unchained: same row shape, one transaction per row, no head lock, no hash."""
    masked_q, masked_a = svc.pii.mask(QUESTION), svc.pii.mask(ANSWER)
    row = {
        "ts": datetime.now(UTC),
        "event_type": "ask",
        "user_pseudonym": "p" * 32,
        "groups": canonical_json(["staff"]),
        "question": masked_q,
        "question_hmac": "h" * 64,
        "retrieved": canonical_json(RETRIEVED),
        "model_name": "m",
        "model_sha256": "a" * 64,
        "policy_version": svc.version,
        "decisions": canonical_json([]),
        "answer": masked_a,
        "answer_hmac": "h" * 64,
        "latency_ms": 1,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "details": "{}",
        "prev_hash": "0" * 64,
        "hash": "0" * 64,
    }
    t0 = time.perf_counter()
    for i in range(records):
        with svc.engine.begin() as conn:
            conn.execute(insert(AuditRecordRow).values(id=10_000_000 + i, **row))
    elapsed = time.perf_counter() - t0
    with svc.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE id >= 10000000"))
    return elapsed


def bench_db(kind: str, pg_base: str | None, records: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with _database(kind, pg_base) as (cfg, cfg_anchor_db, cfg_before):
        svc = PolicyService.from_settings(load_settings(cfg))
        old = PolicyService.from_settings(load_settings(cfg_before))
        _append_one(svc, 0)  # warm-up: pseudonym rows, connections
        _append_before(old, 0)
        base = _baseline(svc, records)
        out["baseline_unchained_1_writer_per_s"] = round(records / base, 1)
        # before and after alternate in halves, so load drifting during the run hits both
        before = one = 0.0
        for _ in range(2):
            before += _threads(1, records // 2, lambda i: _append_before(old, i))
            one += _threads(1, records // 2, lambda i: _append_one(svc, i))
        out["before_appends_1_writer_per_s"] = round(records / before, 1)
        out["after_appends_1_writer_per_s"] = round(records / one, 1)
        out["after_vs_before_1_writer"] = round(before / one, 2)
        eight = _threads(8, records, lambda i: _append_one(svc, i))
        out["after_appends_8_threads_per_s"] = round(records / eight, 1)
        procs = _processes(cfg, 8, records)
        out["after_appends_8_processes_per_s"] = round(records / procs, 1)
        with_db = PolicyService.from_settings(load_settings(cfg_anchor_db))
        _append_one(with_db, 0)  # creates the anchor table
        second = _threads(1, records, lambda i: _append_one(with_db, i))
        out["after_appends_1_writer_file_and_db_anchor_per_s"] = round(records / second, 1)
        svc = PolicyService.from_settings(load_settings(cfg_anchor_db))
        t0 = time.perf_counter()
        checked = _verify_before(svc)  # the same chain, walked the previous release's way
        vt_before = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = svc.audit.verify()
        vt = time.perf_counter() - t0
        if not res.ok:
            raise RuntimeError(f"chain does not verify: {res}")
        out["verify_records"] = res.checked
        out["verify_anchors_checked"] = res.anchors_checked
        out["before_verify_records_per_s"] = round(checked / vt_before, 1)
        out["after_verify_records_per_s"] = round(res.checked / vt, 1)
    return out


def _pg_base(arg: str | None) -> str | None:
    if arg:
        return arg
    if os.environ.get("ENCLAVE_TEST_PG_URL"):
        return os.environ["ENCLAVE_TEST_PG_URL"]
    f = Path("/tmp/pg_url")
    return f.read_text().strip() if f.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2000, help="appends per writer setting")
    ap.add_argument("--pg-url", default=None)
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "bench": "audit",
        "records_per_setting": args.records,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "sqlite": bench_db("sqlite", None, args.records),
    }
    pg = None if args.no_pg else _pg_base(args.pg_url)
    result["postgresql"] = bench_db("postgres", pg, args.records) if pg else "skipped: no URL"
    result["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
