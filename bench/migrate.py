"""Upgrade-path throughput: `ingest migrate-index` points/s and `policies db copy` rows/s.

    .venv/bin/python -m bench.migrate [--points 2000] [--files 20000] [--audit 300]
                                      [--pg-url URL] [--no-pg]

Index: an Edge store of ``--points`` chunk points (384-d dense vectors, real lexical vectors
of ~14-word texts, full payloads) copied by :func:`ingest.index.migrate.migrate_index` into
qdrant-client's local mode, the only Qdrant "server" API available offline. Local mode commits
every point to its SQLite file separately (~17 ms per point on this machine's disk, profiled),
so this number bounds local mode, not a Qdrant server. Baseline, same run and store: reading every
point with its vectors and payload (``scroll_points``), i.e. the part any copy must pay.

Database: a SQLite data dir with ``--files`` ingest file rows and ``--audit`` chained audit
records (written through PolicyService) copied by :func:`core.dbcopy.copy_database` into a
fresh PostgreSQL database (``--pg-url``, ``$ENCLAVE_TEST_PG_URL`` or ``/tmp/pg_url``; created
and dropped by the run). Baseline, same run: reading every row of every table from the source.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, insert, select, text

from core.db import dispose_engines, make_engine, session_scope
from core.dbcopy import copy_database
from core.settings import load_settings
from ingest.encoding.sparse import encode_document
from ingest.index.edge import EdgeIndex
from ingest.index.migrate import migrate_index
from ingest.index.qdrant import QdrantIndex
from ingest.model import ChunkPoint, make_doc_id, make_point_id
from ingest.sync.state import FileRow, SourceRow, open_state
from policies.identity import Principal
from policies.service import PolicyService

DIM = 384
WORDS = [
    "budget",
    "audit",
    "holiday",
    "payroll",
    "kernel",
    "migration",
    "contract",
    "invoice",
    "laptop",
    "vpn",
]


def _points(n: int) -> Iterator[list[ChunkPoint]]:
    rng = random.Random(1)
    batch: list[ChunkPoint] = []
    for i in range(n):
        doc_id = make_doc_id("corp", f"d{i // 10}.docx")
        dense = [rng.gauss(0.0, 1.0) for _ in range(DIM)]
        norm = sum(v * v for v in dense) ** 0.5
        text_ = " ".join(rng.choice(WORDS) for _ in range(14))
        batch.append(
            ChunkPoint(
                id=make_point_id(doc_id, i % 10),
                dense=[v / norm for v in dense],
                sparse=encode_document(text_),
                payload={
                    "doc_id": doc_id,
                    "path": f"d{i // 10}.docx",
                    "source": "corp",
                    "chunk_index": i % 10,
                    "text": text_ * 8,
                    "section": "S",
                    "title": "T",
                    "page": 1,
                    "allowed_groups": ["all"],
                    "classification": "internal",
                    "content_hash": f"{i:064x}",
                    "mtime": 1.0 + i,
                    "ingested_at": "2026-01-01",
                },
            )
        )
        if len(batch) == 500:
            yield batch
            batch = []
    if batch:
        yield batch


def bench_index(points: int, tmp: Path) -> dict[str, Any]:
    store = tmp / "index" / "enclave_chunks"
    store.parent.mkdir(parents=True)
    with EdgeIndex(store) as edge:
        edge.ensure_collection(DIM)
        for batch in _points(points):
            edge.upsert(batch)
        edge.flush()
    with EdgeIndex(store) as edge:
        t0 = time.perf_counter()
        read = sum(len(b) for b in edge.scroll_points(256))
        scroll_s = time.perf_counter() - t0
        with QdrantIndex(collection="enclave_chunks", path=tmp / "target") as target:
            t0 = time.perf_counter()
            result = migrate_index(edge, target, batch_size=256)
            copy_s = time.perf_counter() - t0
    assert read == points and result.complete
    return {
        "points": points,
        "baseline_scroll_s": round(scroll_s, 3),
        "baseline_points_per_s": round(points / scroll_s),
        "migrate_s": round(copy_s, 3),
        "migrate_points_per_s": round(points / copy_s),
        "migrate_vs_scroll": round(copy_s / scroll_s, 2),
        "target": "qdrant-client local mode",
    }


@contextmanager
def _pg_database(base: str) -> Iterator[str]:
    name = f"enclave_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_db(files: int, audit: int, pg_base: str, tmp: Path) -> dict[str, Any]:
    settings = load_settings(None, data_dir=tmp / "data")
    engine = open_state(settings.db_url)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        src = SourceRow(name="corp", root="/srv/corp", created_at=now)
        s.add(src)
        s.flush()
        source_id = src.id
    rows = [
        {
            "source_id": source_id,
            "doc_id": f"{i:032x}",
            "rel_path": f"dir/{i}.pdf",
            "status": "ok",
            "size": i,
            "mtime_ns": i,
            "inode": i,
            "mode": 0o644,
            "sha256": f"{i:064x}",
            "chunk_count": 3,
            "allowed_groups": '["all"]',
            "seen_run": 1,
            "updated_at": now,
            "indexed_at": now,
        }
        for i in range(files)
    ]
    with engine.begin() as conn:
        conn.execute(insert(FileRow), rows)
    svc = PolicyService.from_settings(settings)
    alice = Principal("alice", frozenset({"all"}), frozenset({"employee"}))
    for i in range(audit):
        svc.audit.append(
            "ask",
            principal=alice,
            question=f"q{i} " * 20,
            answer=f"a{i} " * 100,
            retrieved=[(f"{i:032x}", "c")],
            latency_ms=100.0,
        )
    meta = MetaData()
    meta.reflect(make_engine(settings.db_url))
    t0 = time.perf_counter()
    with make_engine(settings.db_url).connect() as conn:
        total = sum(len(conn.execute(select(t)).all()) for t in meta.sorted_tables)
    read_s = time.perf_counter() - t0
    with _pg_database(pg_base) as target:
        t0 = time.perf_counter()
        result = copy_database(settings.db_url, target)
        copy_s = time.perf_counter() - t0
        on_pg = settings.model_copy(update={"database_url": target})
        t0 = time.perf_counter()
        ok = PolicyService.from_settings(on_pg).audit.verify().ok
        verify_s = time.perf_counter() - t0
    return {
        "rows": result.total_rows,
        "rows_read_baseline": total,
        "baseline_read_s": round(read_s, 3),
        "copy_s": round(copy_s, 3),
        "copy_rows_per_s": round(result.total_rows / copy_s),
        "copy_vs_read": round(copy_s / read_s, 1),
        "audit_verifies_on_target": ok,
        "audit_verify_s": round(verify_s, 3),
        "target": "PostgreSQL (local)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--audit", type=int, default=300)
    ap.add_argument("--pg-url")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="enclave-bench-migrate-") as tmp:
        out["index"] = bench_index(args.points, Path(tmp))
        pg = args.pg_url or os.environ.get("ENCLAVE_TEST_PG_URL")
        if pg is None and Path("/tmp/pg_url").exists():
            pg = Path("/tmp/pg_url").read_text().strip()
        if not args.no_pg and pg:
            out["database"] = bench_db(args.files, args.audit, pg, Path(tmp))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
