"""The sync engine end to end, in process: real parser workers, the real embedding model, real
Qdrant Edge, real SQLite and PostgreSQL state databases."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.db import session_scope
from core.errors import EmbeddingChangedError, RootEmptyError, SourceArgumentError
from ingest.model import make_doc_id, make_point_id, payload_mtime
from ingest.sync.run import run_sync
from ingest.sync.state import FileRow, IndexMetaRow, SyncRunRow, open_state
from ingest.sync.status import collect_status
from tests.ingest.conftest import DOCS, dump_index, settings_for, write_docs

pytestmark = pytest.mark.slow


def _rows(settings: object) -> dict[str, FileRow]:
    engine = open_state(settings.db_url)  # type: ignore[attr-defined]
    with session_scope(engine) as s:
        return {r.rel_path: r for r in s.scalars(select(FileRow))}


def _points_by_path(dump: dict[str, dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for p in dump.values():
        payload = p["payload"]
        assert isinstance(payload, dict)
        out.setdefault(str(payload["path"]), []).append(payload)
    return out


def test_incremental_sync_lifecycle(tmp_path: Path, db_url: str) -> None:
    root = tmp_path / "share"
    write_docs(root)
    settings = settings_for(tmp_path, db_url)

    first = run_sync(settings, root, "handbook", workers=2)
    assert (first.added, first.updated, first.deleted, first.failed_count) == (6, 0, 0, 0)
    assert first.chunks == first.embedded > 0
    dump = dump_index(settings)
    assert len(dump) == first.chunks
    by_path = _points_by_path(dump)
    assert set(by_path) == set(DOCS)
    groups = {path: pts[0]["allowed_groups"] for path, pts in by_path.items()}
    assert groups["hr/leave.md"] == ["hr"]
    assert groups["hr/confidential/salaries.md"] == ["hr-managers"]
    assert groups["it/vpn.md"] == ["everyone"]
    assert by_path["hr/confidential/salaries.md"][0]["classification"] == "confidential"
    for pid, point in dump.items():  # deterministic ids
        payload = point["payload"]
        assert isinstance(payload, dict)
        assert pid == make_point_id(
            make_doc_id("handbook", str(payload["path"])), int(payload["chunk_index"])
        )
    rows = _rows(settings)
    assert all(r.status == "ok" and r.chunk_count > 0 and r.sha256 for r in rows.values())

    # Unchanged: nothing parsed, embedded or written.
    again = run_sync(settings, root, "handbook", workers=2)
    assert (again.unchanged, again.added, again.updated, again.embedded, again.chunks) == (
        6,
        0,
        0,
        0,
        0,
    )
    assert dump_index(settings).keys() == dump.keys()

    # Change one file (fewer chunks), delete one, rename one, touch one, add one.
    (root / "hr/leave.md").write_text("# Annual leave\n\n30 days of paid leave from 2027.\n")
    (root / "it/passwords.txt").unlink()
    (root / "finance").rename(root / "money")
    (root / "it/vpn.md").touch()
    os.utime(root / "it/vpn.md", (time.time() + 5, time.time() + 5))
    (root / "it/printers.md").write_text("# Printers\n\nUse the badge reader on each floor.\n")
    third = run_sync(settings, root, "handbook", workers=2)
    assert third.updated == 1 and third.added == 1 and third.renamed == 1, third
    assert third.deleted == 1 and third.unchanged == 3, third  # vpn (touched) counts unchanged
    after = _points_by_path(dump_index(settings))
    assert "it/passwords.txt" not in after and "finance/expenses.md" not in after
    assert "money/expenses.md" in after and "it/printers.md" in after
    assert all("30 days" in str(p["text"]) for p in after["hr/leave.md"])
    assert len(after["hr/leave.md"]) == 1
    # the rename moved vectors: only the changed and the new file were embedded
    new_chunks = len(after["hr/leave.md"]) + len(after["it/printers.md"])
    assert third.embedded == new_chunks
    renamed_ids = {
        make_point_id(make_doc_id("handbook", "money/expenses.md"), i)
        for i in range(len(after["money/expenses.md"]))
    }
    assert renamed_ids <= set(dump_index(settings))
    vpn_mtime = payload_mtime((root / "it/vpn.md").stat().st_mtime_ns)
    assert all(p["mtime"] == vpn_mtime for p in after["it/vpn.md"])
    assert set(_rows(settings)) == set(after)

    # Status reports it.
    [status] = collect_status(settings)
    assert status.name == "handbook" and status.files == {"ok": 6}
    assert status.chunks == sum(len(v) for v in after.values())
    assert status.last_sync is not None and status.last_sync.status == "completed"
    assert status.last_sync.counters["renamed"] == 1


def test_permission_changes_update_payload_without_embedding(tmp_path: Path, db_url: str) -> None:
    root = tmp_path / "share"
    write_docs(root)
    settings = settings_for(tmp_path, db_url, extra="[ingest]\nposix_permissions = true\n")
    run_sync(settings, root, "handbook", workers=1)
    before = dump_index(settings)

    rules = Path(str(settings.access_rules))
    rules.write_text(rules.read_text().replace("groups: [hr]", "groups: [hr, people-ops]"))
    os.chmod(root / "it/vpn.md", 0o600)
    summary = run_sync(settings, root, "handbook", workers=1)
    assert summary.permissions_updated == 2 and summary.embedded == 0 and summary.chunks == 0
    after = _points_by_path(dump_index(settings))
    assert all(p["allowed_groups"] == ["hr", "people-ops"] for p in after["hr/leave.md"])
    assert all(p["allowed_groups"] == [] for p in after["it/vpn.md"])  # owner-only: nobody
    assert set(dump_index(settings)) == set(before)
    assert _rows(settings)["it/vpn.md"].allowed_groups == "[]"


def test_bad_files_never_stop_the_sync(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    (root / "bad").mkdir()
    (root / "bad/empty.md").write_text("")
    (root / "bad/program.bin").write_bytes(bytes(range(256)) * 64)
    (root / "bad/broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage \x00\xff" * 10)
    (root / "bad/big.md").write_text("word " * 300_000)
    (root / "crash.md").write_text("# Crash\n\nthis file kills its parser\n")
    (root / "hang.md").write_text("# Hang\n\nthis file hangs its parser\n")
    settings = settings_for(tmp_path, extra="[ingest]\nmax_file_mb = 1.0\nparse_timeout_s = 8\n")
    os.environ["ENCLAVE_FAULTS"] = "parse:crash.md=crash;parse:hang.md=hang"
    try:
        summary = run_sync(settings, root, "handbook", workers=2)
    finally:
        del os.environ["ENCLAVE_FAULTS"]
    assert summary.added == 6
    issues = {i.path: i.code for i in summary.failed + summary.skipped}
    assert issues["bad/empty.md"] == "ingest.empty"
    assert issues["bad/big.md"] == "ingest.too_large"
    assert issues["bad/program.bin"] == "ingest.unsupported"
    assert issues["bad/broken.pdf"] == "ingest.parse_failed"
    assert issues["crash.md"] == "ingest.worker_crashed"
    assert issues["hang.md"] == "ingest.timeout"
    rows = _rows(settings)
    assert rows["crash.md"].status == "failed" and rows["bad/empty.md"].status == "skipped"
    assert all(rows[p].reason_code and rows[p].message for p in issues)
    # Failed files are not retried until they change, unless asked.
    again = run_sync(settings, root, "handbook", workers=2)
    assert again.failed_count == 0 and again.unchanged == len(rows)
    retry = run_sync(settings, root, "handbook", workers=2, retry_failed=True)
    assert retry.added + retry.updated == 2 and retry.failed_count == 1  # broken.pdf stays failed
    [status] = collect_status(settings)
    assert status.files["ok"] == 8
    assert [e.path for e in status.recent_errors if e.status == "failed"] == ["bad/broken.pdf"]


def test_repair_removes_orphans_and_redoes_intents(tmp_path: Path, db_url: str) -> None:
    root = tmp_path / "share"
    write_docs(root)
    settings = settings_for(tmp_path, db_url)
    run_sync(settings, root, "handbook", workers=1)
    clean = dump_index(settings)
    engine = open_state(settings.db_url)
    with session_scope(engine) as s:  # simulate a killed run: an intent row, a running run
        s.execute(update(FileRow).where(FileRow.rel_path == "it/vpn.md").values(status="indexing"))
        s.execute(update(SyncRunRow).values(status="running"))
    from ingest.index import open_index
    from ingest.model import ChunkPoint, SparseVector

    index = open_index(settings)
    some = next(iter(clean.values()))
    stray = ChunkPoint(
        make_point_id("f" * 32, 0),
        list(some["dense"]),
        SparseVector([1], [1.0]),
        {**some["payload"], "doc_id": "f" * 32},
    )
    extra = ChunkPoint(
        make_point_id(make_doc_id("handbook", "it/vpn.md"), 99),
        list(some["dense"]),
        SparseVector([1], [1.0]),
        {**some["payload"], "doc_id": make_doc_id("handbook", "it/vpn.md")},
    )
    index.upsert([stray, extra])
    index.close()
    summary = run_sync(settings, root, "handbook", workers=1)
    assert summary.orphans_removed == 1  # the unknown doc; the extra chunk goes with the redo
    assert summary.embedded == 0  # the redo reused the vectors already in the index
    repaired = dump_index(settings)
    assert repaired.keys() == clean.keys()
    assert all(repaired[k]["hash"] == clean[k]["hash"] for k in clean)


def test_lost_index_is_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    settings = settings_for(tmp_path)
    first = run_sync(settings, root, "handbook", workers=1)
    shutil.rmtree(settings.index_dir)
    again = run_sync(settings, root, "handbook", workers=1)
    assert again.repaired == 6 and again.chunks == first.chunks
    assert len(dump_index(settings)) == first.chunks


def test_guards(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    settings = settings_for(tmp_path)
    with pytest.raises(SourceArgumentError, match="does not exist"):
        run_sync(settings, tmp_path / "nope", "handbook")
    with pytest.raises(SourceArgumentError, match="--source"):
        run_sync(settings, root, "  ")
    run_sync(settings, root, "handbook", workers=1)
    empty = tmp_path / "unmounted"
    empty.mkdir()
    with pytest.raises(RootEmptyError, match="refusing to delete"):
        run_sync(settings, empty, "handbook", workers=1)
    assert len(_rows(settings)) == 6
    gone = run_sync(settings, empty, "handbook", workers=1, allow_empty_root=True)
    assert gone.deleted == 6 and dump_index(settings) == {}
    with session_scope(open_state(settings.db_url)) as s:
        s.execute(update(IndexMetaRow).values(embedding_model="/models/other"))
    with pytest.raises(EmbeddingChangedError, match="cannot be mixed"):
        run_sync(settings, root, "handbook", workers=1)


OTHER_DOCS = {
    "onboarding/first-day.md": "# First day\n\nCollect your badge at reception at 9am. Your "
    "manager walks you through the security briefing before lunch.\n",
    "onboarding/equipment.md": "# Equipment\n\nLaptops are imaged by IT within two days. Order a "
    "second screen through the service desk.\n",
    "facilities/parking.md": "# Parking\n\nThe garage opens at 6am. Electric cars charge on "
    "level -2 for free during working hours.\n",
}


def test_two_sources_sync_in_parallel_into_one_index(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-source locks: two shares sync at the same time through one index (as in the UI
    process, or two processes on a Qdrant server); the result equals syncing them in turn."""
    import threading

    from core.errors import SyncInProgressError
    from ingest.index import open_index
    from ingest.sync.lock import store_identity
    from ingest.sync.status import sync_holder

    hr, it = tmp_path / "hr-share", tmp_path / "it-share"
    write_docs(hr)
    write_docs(it, OTHER_DOCS)
    settings = settings_for(tmp_path, db_url)
    monkeypatch.setenv("ENCLAVE_FAULTS", "commit:*=sleep:0.4")  # widen both write phases
    index = open_index(settings)
    results: dict[str, object] = {}

    def sync(root: Path, name: str) -> None:
        try:
            results[name] = run_sync(settings, root, name, workers=1, index=index)
        except BaseException as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=sync, args=(hr, "hr")),
        threading.Thread(target=sync, args=(it, "it")),
    ]
    try:
        for t in threads:
            t.start()
        both_running = False
        deadline = time.time() + 300
        while any(t.is_alive() for t in threads) and time.time() < deadline:
            running = {s.name for s in collect_status(settings) if s.running}
            both_running = both_running or running == {"hr", "it"}
            if both_running and "again" not in results:
                try:  # the same source is still refused while it runs
                    run_sync(settings, hr, "hr", workers=1, index=index)
                except SyncInProgressError as exc:
                    results["again"] = exc
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=300)
    finally:
        index.close()
    assert both_running, "the two syncs never held their locks at the same time"
    assert isinstance(results["again"], SyncInProgressError)
    assert "source 'hr'" in results["again"].message
    assert getattr(results["hr"], "added", None) == 6, results["hr"]
    assert getattr(results["it"], "added", None) == 3, results["it"]
    assert sync_holder(settings) is None and store_identity(settings)
    monkeypatch.delenv("ENCLAVE_FAULTS")
    reference = settings_for(tmp_path, name="sequential")
    run_sync(reference, hr, "hr", workers=1)
    run_sync(reference, it, "it", workers=1)
    from tests.ingest.conftest import assert_same_index

    assert_same_index(dump_index(settings), dump_index(reference))
