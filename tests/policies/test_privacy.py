"""Issue 14, items 10 and 15 (policies side): the database file is private to its owner,
"forget" covers the chat history, history is stored masked, and an export is itself audited."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from core.db import make_engine
from core.settings import load_settings
from policies.cli import app
from policies.identity import Principal
from policies.service import PolicyService


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_private(config_file: Path) -> None:
    settings = load_settings(config_file)
    svc = PolicyService.from_settings(settings)
    svc.audit.append("ask", principal=Principal("alice"), question="card 4111 1111 1111 1111")
    db = settings.data_dir / "enclave.db"
    assert _mode(db) & 0o077 == 0, oct(_mode(db))
    wal = db.with_name("enclave.db-wal")
    assert wal.exists() and _mode(wal) & 0o077 == 0, oct(_mode(wal))


def test_existing_world_readable_database_is_tightened(config_file: Path) -> None:
    settings = load_settings(config_file)
    settings.data_dir.mkdir(parents=True)
    db = settings.data_dir / "enclave.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    PolicyService.from_settings(settings)
    assert _mode(db) & 0o077 == 0, oct(_mode(db))


def _history_store(config_file: Path):  # type: ignore[no-untyped-def]
    from assistant.history import HistoryStore

    store = HistoryStore(make_engine(load_settings(config_file).db_url))
    store.migrate()
    return store


def test_history_is_stored_masked(config_file: Path) -> None:
    store = _history_store(config_file)
    question = "Refund card 4111 1111 1111 1111 and mail jane.doe@example.com"
    conv = store.create("alice", question)
    store.add_message("alice", conv.id, "user", question)
    store.add_message("alice", conv.id, "assistant", "Sent to jane.doe@example.com.")
    [c] = store.conversations("alice")
    assert "4111" not in c.title and "[CARD]" in c.title
    contents = [m.content for m in store.messages("alice", conv.id)]
    assert contents == ["Refund card [CARD] and mail [EMAIL]", "Sent to [EMAIL]."]
    with store.engine.connect() as conn:
        raw = conn.exec_driver_sql(
            "SELECT content FROM assistant_messages UNION ALL SELECT title FROM "
            "assistant_conversations"
        ).all()
    assert not any("4111" in r[0] or "jane.doe" in r[0] for r in raw)


def test_forget_covers_the_chat_history(config_file: Path) -> None:
    svc = PolicyService.from_settings(load_settings(config_file))
    svc.audit.append("ask", principal=Principal("alice"), question="q")
    store = _history_store(config_file)
    mine = store.create("alice", "my question")
    store.add_message("alice", mine.id, "user", "my question")
    theirs = store.create("bob", "his question")
    store.add_message("bob", theirs.id, "user", "his question")

    res = CliRunner().invoke(
        app, ["audit", "forget", "--user", "alice", "--config", str(config_file)]
    )
    assert res.exit_code == 0, res.output
    assert "1 conversation" in res.output
    assert store.conversations("alice") == []
    assert [c.id for c in store.conversations("bob")] == [theirs.id]
    with store.engine.connect() as conn:
        left = conn.exec_driver_sql("SELECT count(*) FROM assistant_messages").scalar()
    assert left == 1
    [event] = svc.audit.records(event_type="admin_change")
    assert event["details"]["action"] == "audit.forget_user"
    assert event["details"]["erased"]["assistant"] == 1


def test_export_is_itself_audited(config_file: Path, tmp_path: Path) -> None:
    svc = PolicyService.from_settings(load_settings(config_file))
    for i in range(3):
        svc.audit.append("ask", principal=Principal("alice"), question=f"q{i}")
    dest = tmp_path / "audit.jsonl"
    res = CliRunner().invoke(
        app, ["audit", "export", "--out", str(dest), "--config", str(config_file)]
    )
    assert res.exit_code == 0, res.output
    [event] = svc.audit.records(event_type="admin_change")
    details = event["details"]
    assert details["action"] == "audit.export"
    assert (details["first_id"], details["last_id"], details["count"]) == (1, 3, 3)
    assert details["format"] == "jsonl" and details["sha256"]
    assert svc.audit.verify().ok
