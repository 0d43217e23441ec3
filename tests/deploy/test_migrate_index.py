"""`ingest migrate-index`, for real: an embedded Qdrant Edge store copied into qdrant-client's
local mode (the server API): every point, vector and payload identical, payload indexes
requested, refusal of a non-empty target, resume after an interruption, idempotent re-runs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.errors import IndexTargetNotEmptyError, VectorIndexError
from ingest.cli import app as ingest_cli
from ingest.encoding.sparse import encode_document
from ingest.index.common import KEYWORD_INDEXES
from ingest.index.edge import EdgeIndex
from ingest.index.migrate import checkpoint_path, migrate_index
from ingest.index.qdrant import QdrantIndex
from ingest.model import ChunkPoint, make_doc_id, make_point_id

DIM = 384
N_POINTS = 350
GROUPS: tuple[list[str], ...] = (["hr"], ["eng", "all"], [], ["finance"], ["all"])
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


def _points(n: int, seed: int = 7) -> list[ChunkPoint]:
    rng = random.Random(seed)
    points = []
    for i in range(n):
        doc_id = make_doc_id("corp", f"dir{i % 7}/file{i // 3}.docx")
        chunk = i % 3
        text = " ".join(rng.choice(WORDS) for _ in range(12)) + f" item {i}"
        dense = [rng.gauss(0.0, 1.0) for _ in range(DIM)]
        norm = sum(v * v for v in dense) ** 0.5
        points.append(
            ChunkPoint(
                id=make_point_id(doc_id, chunk),
                dense=[v / norm for v in dense],
                sparse=encode_document(text),
                payload={
                    "doc_id": doc_id,
                    "path": f"dir{i % 7}/file{i // 3}.docx",
                    "source": "corp",
                    "chunk_index": chunk,
                    "text": text,
                    "section": f"Section {chunk}",
                    "title": f"File {i // 3}",
                    "page": None if i % 2 else chunk + 1,
                    "allowed_groups": GROUPS[i % len(GROUPS)],
                    "classification": "internal",
                    "content_hash": f"{i:064x}",
                    "mtime": 1_700_000_000.5 + i,
                    "ingested_at": "2026-11-26T18:00:00+00:00",
                },
            )
        )
    return points


@pytest.fixture
def edge_store(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "index" / "enclave_chunks"
    path.parent.mkdir(parents=True)
    with EdgeIndex(path) as edge:
        edge.ensure_collection(DIM)
        points = _points(N_POINTS)
        for start in range(0, len(points), 100):
            edge.upsert(points[start : start + 100])
        edge.flush()
        assert edge.count() == N_POINTS
    return path


class _RecordingClient:
    """The real qdrant-client, with its create_payload_index calls recorded (local mode keeps
    no payload index, so this is how a test sees that the migration asked for them)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.payload_indexes: list[str] = []

    def create_payload_index(self, collection: str, field: str, *args: Any, **kw: Any) -> Any:
        self.payload_indexes.append(field)
        return self._client.create_payload_index(collection, field, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _all(index: Any) -> dict[str, ChunkPoint]:
    return {p.id: p for batch in index.scroll_points(128) for p in batch}


def _same_point(a: ChunkPoint, b: ChunkPoint) -> None:
    assert a.payload == b.payload
    assert a.dense == pytest.approx(b.dense, abs=1e-6)
    assert dict(zip(a.sparse.indices, a.sparse.values, strict=True)) == pytest.approx(
        dict(zip(b.sparse.indices, b.sparse.values, strict=True)), abs=1e-6
    )


@pytest.fixture
def target(tmp_path: Path) -> Iterator[QdrantIndex]:
    index = QdrantIndex(collection="enclave_chunks", path=tmp_path / "qdrant-local")
    yield index
    index.close()


def test_every_point_vector_and_payload_arrives(edge_store: Path, target: QdrantIndex) -> None:
    recorder = _RecordingClient(target.client)
    target.client = recorder  # type: ignore[assignment]
    with EdgeIndex(edge_store) as source:
        result = migrate_index(source, target, batch_size=100)
        source_points = _all(source)
    assert result.complete and result.copied == N_POINTS == result.target_points
    assert result.dim == DIM and result.skipped == 0
    assert sorted(recorder.payload_indexes) == sorted(KEYWORD_INDEXES)
    migrated = _all(target)
    assert migrated.keys() == source_points.keys() and len(migrated) == N_POINTS
    for pid, point in source_points.items():
        _same_point(point, migrated[pid])
    # the copy answers like the original, ACL filter included (fail closed for [] groups)
    probe = source_points[next(iter(source_points))]
    hits = target.search(groups=frozenset({"hr"}), dense=probe.dense, mode="dense", limit=20)
    assert hits and all("hr" in h.payload["allowed_groups"] for h in hits)
    assert target.search(groups=frozenset(), dense=probe.dense, mode="dense") == []
    lexical = target.search(groups=frozenset({"all"}), sparse=probe.sparse, mode="lexical")
    assert lexical and all("all" in h.payload["allowed_groups"] for h in lexical)


def test_non_empty_target_is_refused_then_force_is_idempotent(
    edge_store: Path, target: QdrantIndex
) -> None:
    with EdgeIndex(edge_store) as source:
        migrate_index(source, target, batch_size=200)
        before = _all(target)
        with pytest.raises(IndexTargetNotEmptyError) as err:
            migrate_index(source, target, batch_size=200)
        assert err.value.code == "index.target_not_empty" and "--force" in err.value.message
        again = migrate_index(source, target, batch_size=200, force=True)
    assert again.complete and again.target_points == N_POINTS
    after = _all(target)
    assert after.keys() == before.keys()
    for pid, point in before.items():
        _same_point(point, after[pid])


class _Interrupted(Exception):
    pass


def test_interrupted_copy_resumes_from_its_checkpoint(
    edge_store: Path, target: QdrantIndex, tmp_path: Path
) -> None:
    ckpt = checkpoint_path(tmp_path / "data", "qdrant-local")
    seen: list[int] = []

    def stop_after_three(n: int) -> None:
        seen.append(n)
        if len(seen) == 3:
            raise _Interrupted

    with EdgeIndex(edge_store) as source:
        with pytest.raises(_Interrupted):
            migrate_index(
                source,
                target,
                batch_size=100,
                checkpoint_file=ckpt,
                target_name="qdrant-local",
                on_batch=stop_after_three,
            )
        assert target.count() == 300 and ckpt.exists()
        with pytest.raises(IndexTargetNotEmptyError):
            migrate_index(source, target, batch_size=100, checkpoint_file=ckpt)
        resumed = migrate_index(
            source,
            target,
            batch_size=100,
            resume=True,
            checkpoint_file=ckpt,
            target_name="qdrant-local",
        )
        source_points = _all(source)
    assert resumed.skipped == 300 and resumed.copied == N_POINTS - 300
    assert resumed.complete and not ckpt.exists()
    migrated = _all(target)
    assert migrated.keys() == source_points.keys()
    for pid, point in source_points.items():
        _same_point(point, migrated[pid])


def test_empty_source_is_a_clear_error(tmp_path: Path, target: QdrantIndex) -> None:
    with (
        EdgeIndex(tmp_path / "empty") as source,
        pytest.raises(VectorIndexError, match="nothing to"),
    ):
        migrate_index(source, target)
    assert target.count() == 0


def test_cli_copies_then_refuses_a_second_run(edge_store: Path, tmp_path: Path) -> None:
    config = tmp_path / "enclave.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    dest = tmp_path / "server-like"
    runner = CliRunner()
    args = ["migrate-index", "--config", str(config), "--to-path", str(dest), "--batch-size", "64"]
    first = runner.invoke(ingest_cli, args)
    assert first.exit_code == 0, first.output
    assert f"{N_POINTS} points copied" in first.output
    assert f"target holds {N_POINTS} of the source's {N_POINTS}" in first.output
    second = runner.invoke(ingest_cli, args)
    assert second.exit_code == 2 and "index.target_not_empty" in second.output
    with QdrantIndex(collection="enclave_chunks", path=dest) as copy:
        assert copy.count() == N_POINTS
    both = runner.invoke(ingest_cli, [*args, "--to-url", "http://127.0.0.1:6333"])
    assert both.exit_code == 2 and "exactly one of --to-url" in both.output
