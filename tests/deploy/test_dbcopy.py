"""`policies db copy`, for real: a SQLite data dir filled through the packages' own code (ingest
sync state, policies' audit log with a signed checkpoint, accounts, usage, assistant history)
copied into a fresh PostgreSQL database: every table and row identical, the audit chain still
verifies, sequences continue after the copied ids, a non-empty target is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, create_engine, select
from typer.testing import CliRunner

from assistant.history import HistoryStore
from core.db import dispose_engines, make_engine, session_scope
from core.dbcopy import VERSION_PREFIX, DatabaseCopy, copy_database
from core.errors import DbTargetNotEmptyError, SameDatabaseError
from core.settings import Settings, load_settings
from ingest.sync.state import FileRow, SourceRow, SyncRunRow, open_state
from policies.audit_retention import create_checkpoint
from policies.cli import app as policies_cli
from policies.identity import Principal
from policies.service import PolicyService

pytestmark = pytest.mark.postgres

ALICE = Principal(user_id="alice", groups=frozenset({"hr", "all"}), roles=frozenset({"employee"}))


def _fill(settings: Settings) -> int:
    """Write data through each package's own code; returns the number of audit records."""
    url = settings.db_url
    engine = open_state(url)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        src = SourceRow(name="corp", root="/srv/shares/corp", created_at=now)
        s.add(src)
        s.flush()
        run = SyncRunRow(
            source_id=src.id,
            store_key="k" * 64,
            status="ok",
            started_at=now,
            finished_at=now,
            seconds=12.5,
            pid=4242,
            host="vm1",
            workers=2,
            counters='{"added": 40}',
        )
        s.add(run)
        for i in range(40):
            s.add(
                FileRow(
                    source_id=src.id,
                    doc_id=f"{i:032x}",
                    rel_path=f"hr/file{i}.docx",
                    status="ok" if i % 5 else "failed",
                    reason_code=None if i % 5 else "ingest.parse_failed",
                    size=1000 + i,
                    mtime_ns=1_700_000_000_000_000_000 + i,
                    inode=10_000 + i,
                    mode=0o644,
                    sha256=f"{i:064x}",
                    chunk_count=i % 4,
                    allowed_groups='["hr"]',
                    updated_at=now,
                    indexed_at=now if i % 5 else None,
                )
            )
    history = HistoryStore(make_engine(url))
    history.migrate()
    conv = history.create("alice", "What is the holiday policy?")
    history.add_message("alice", conv.id, "user", "What is the holiday policy?")
    history.add_message(
        "alice",
        conv.id,
        "assistant",
        "25 days [1].",
        citations=[{"n": 1, "path": "hr/file1.docx", "page": 2, "snippet": "25 days"}],
    )

    svc = PolicyService.from_settings(settings)
    svc.accounts.create("alice", "a-long-password-1")
    svc.gate.record_usage(ALICE, 321)
    for i in range(25):
        svc.audit.append(
            "ask",
            principal=ALICE,
            question=f"question {i} from alice@example.com",
            retrieved=[(f"{i:032x}", f"chunk-{i}")],
            model_name="Meta-Llama-3-70B-Instruct",
            model_sha256="ab" * 32,
            policy_version="v1",
            answer=f"answer {i}",
            latency_ms=100.5 + i,
            prompt_tokens=900 + i,
            completion_tokens=50,
            details={"i": i, "note": "é ü ß"},
        )
        if i == 14:
            create_checkpoint(svc.audit, svc.signing_key)
    svc.audit.append("login", user_id="bob", details={"ok": False, "reason": "bad password"})
    assert svc.audit.verify().ok
    return svc.audit.count()


def _rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    meta = MetaData()
    meta.reflect(engine)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(select(table).order_by(*order)).mappings().all()
            out[table.name] = [{k: _norm(v) for k, v in r.items()} for r in rows]
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


@pytest.fixture
def source(tmp_path: Path) -> Settings:
    return load_settings(None, data_dir=tmp_path / "data")


def test_sqlite_to_postgres_copies_everything_and_the_chain_verifies(
    source: Settings, pg_database: str
) -> None:
    n_audit = _fill(source)
    result = copy_database(source.db_url, pg_database)
    assert isinstance(result, DatabaseCopy)
    assert result.packages == ["assistant", "ingest", "policies"]

    src_rows, dst_rows = _rows(make_engine(source.db_url)), _rows(make_engine(pg_database))
    assert set(src_rows) == set(dst_rows)
    app_tables = {t for t in src_rows if not t.startswith(VERSION_PREFIX)}
    assert app_tables == set(result.rows)
    assert {"audit_records", "audit_checkpoints", "ingest_files", "policy_accounts"} <= app_tables
    for table in sorted(src_rows):
        assert dst_rows[table] == src_rows[table], table
    assert result.rows["audit_records"] == n_audit == 26
    assert result.rows["ingest_files"] == 40

    # the same data dir (audit keys) over PostgreSQL: the chain and its checkpoint verify
    on_pg = source.model_copy(update={"database_url": pg_database})
    svc = PolicyService.from_settings(on_pg)
    verdict = svc.audit.verify()
    assert verdict.ok, verdict
    assert verdict.checked == n_audit
    # sequences continue after the copied ids: new rows get fresh ids, the chain grows
    assert any("audit_checkpoints" in s for s in result.sequences)
    new_cp = create_checkpoint(svc.audit, svc.signing_key)
    assert new_cp.head_id == n_audit
    assert svc.audit.append("login", user_id="carol", details={"ok": True}) == n_audit + 1
    assert svc.audit.verify().ok
    with session_scope(make_engine(pg_database)) as s:
        row = SourceRow(name="second", root="/srv/b", created_at=datetime.now(UTC))
        s.add(row)
        s.flush()
        assert row.id == 2
    history = HistoryStore(make_engine(pg_database))
    conv = history.conversations("alice")[0]
    msgs = history.messages("alice", conv.id)
    assert msgs[-1].citations == [
        {"n": 1, "path": "hr/file1.docx", "page": 2, "snippet": "25 days"}
    ]
    added = history.add_message("alice", conv.id, "user", "and sick leave?")
    assert added.id == max(m.id for m in msgs) + 1


def test_non_empty_target_is_refused_and_force_replaces(source: Settings, pg_database: str) -> None:
    _fill(source)
    first = copy_database(source.db_url, pg_database)
    with pytest.raises(DbTargetNotEmptyError) as err:
        copy_database(source.db_url, pg_database)
    assert err.value.code == "db.target_not_empty" and "audit_records" in err.value.message
    # more source data, then --force: the target becomes the source again, not a merge
    svc = PolicyService.from_settings(source)
    svc.audit.append("login", user_id="dave", details={"ok": True})
    again = copy_database(source.db_url, pg_database, force=True)
    assert again.rows["audit_records"] == first.rows["audit_records"] + 1
    assert _rows(make_engine(pg_database)) == _rows(make_engine(source.db_url))
    on_pg = source.model_copy(update={"database_url": pg_database})
    assert PolicyService.from_settings(on_pg).audit.verify().ok


def test_an_interrupted_copy_leaves_no_rows_and_reruns(source: Settings, pg_database: str) -> None:
    _fill(source)

    class Boom(Exception):
        pass

    def fail_in_audit(table: str, n: int) -> None:
        if table == "audit_records":
            raise Boom

    with pytest.raises(Boom):
        copy_database(source.db_url, pg_database, on_rows=fail_in_audit)
    counts = {t: len(r) for t, r in _rows(make_engine(pg_database)).items()}
    assert counts["ingest_files"] == 0 and counts["audit_records"] == 0
    result = copy_database(source.db_url, pg_database)  # no --force needed
    assert result.rows["ingest_files"] == 40


def test_same_database_and_empty_source_are_clear_errors(source: Settings, tmp_path: Path) -> None:
    with pytest.raises(SameDatabaseError):
        copy_database(source.db_url, source.db_url)
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    create_engine(empty).dispose()
    with pytest.raises(Exception, match="no Enclave tables"):
        copy_database(empty, f"sqlite:///{tmp_path / 'other.db'}")


def test_cli_copies_from_the_configured_database(
    source: Settings, pg_database: str, tmp_path: Path
) -> None:
    _fill(source)
    dispose_engines()
    config = tmp_path / "enclave.toml"
    config.write_text(f'data_dir = "{source.data_dir}"\n')
    url_file = tmp_path / "target-url"
    url_file.write_text(pg_database + "\n")
    runner = CliRunner()
    copy = ["db", "copy", "--config", str(config)]
    ok = runner.invoke(policies_cli, [*copy, "--to-file", str(url_file)])
    assert ok.exit_code == 0, ok.output
    assert "rows of assistant, ingest, policies copied" in ok.output
    again = runner.invoke(
        policies_cli, ["db", "copy", "--config", str(config), "--to", pg_database]
    )
    assert again.exit_code == 2 and "db.target_not_empty" in again.output
    flat = again.output.replace("\n", "")
    assert ":***@" in flat and pg_database not in flat  # the password is never printed
    neither = runner.invoke(policies_cli, copy)
    assert neither.exit_code == 2 and "exactly one of --to" in neither.output


def test_copy_back_from_postgres_to_sqlite_round_trips(
    source: Settings, pg_database: str, tmp_path: Path
) -> None:
    _fill(source)
    copy_database(source.db_url, pg_database)
    back = f"sqlite:///{tmp_path / 'back.db'}"
    result = copy_database(pg_database, back)  # server source: one REPEATABLE READ snapshot
    assert result.rows["audit_records"] == 26
    assert _rows(make_engine(back)) == _rows(make_engine(source.db_url))
