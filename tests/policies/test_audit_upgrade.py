"""Issue 14, item 5: a log written before records were signed (schema 0001) migrates, is
re-anchored once by a signed, audited record, and keeps verifying; tampering with its old,
unsigned records is still caught, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select, text

from core.db import make_engine
from core.settings import load_settings
from policies.audit_chain import GENESIS, canonical_json, chain_hash, format_ts
from policies.identity import Principal
from policies.service import _MIGRATED, MIGRATIONS, VERSION_TABLE, PolicyService
from policies.tables import AuditRecordRow


def _legacy_log(engine: Engine, n: int) -> str:
    """Schema 0001 and ``n`` records chained the old way (sha256 only); returns the head hash."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    cfg.attributes["version_table"] = VERSION_TABLE
    command.upgrade(cfg, "0001_policies")
    prev = GENESIS.prev_hash
    start = datetime.now(UTC) - timedelta(days=3)
    with engine.begin() as conn:
        for i in range(1, n + 1):
            rec = {
                "id": i,
                "ts": format_ts(start + timedelta(minutes=i)),
                "event_type": "ask",
                "user_pseudonym": f"p{i % 3}",
                "groups": ["hr"],
                "question": f"old question {i}",
                "question_hmac": None,
                "retrieved": [],
                "model_name": None,
                "model_sha256": None,
                "policy_version": "0.1+old",
                "decisions": [],
                "answer": f"old answer {i}",
                "answer_hmac": None,
                "latency_ms": None,
                "prompt_tokens": None,
                "completion_tokens": None,
                "details": {},
                "prev_hash": prev,
            }
            digest = chain_hash(prev, rec)
            row = dict(rec, hash=digest, ts=start + timedelta(minutes=i))
            for k in ("groups", "retrieved", "decisions", "details"):
                row[k] = canonical_json(row[k])
            cols = ", ".join(row)
            conn.execute(
                text(
                    f"INSERT INTO audit_records ({cols}) VALUES ({', '.join(':' + c for c in row)})"
                ),
                row,
            )
            prev = digest
        conn.execute(
            text("UPDATE audit_head SET last_id = :n, last_hash = :h"), {"n": n, "h": prev}
        )
    return prev


@pytest.fixture
def legacy(db_config: Path) -> tuple[Path, str]:
    settings = load_settings(db_config)
    _MIGRATED.clear()  # this test owns the migration of its fresh database
    return db_config, _legacy_log(make_engine(settings.db_url), 5)


def test_old_chain_is_reanchored_once_and_keeps_verifying(legacy: tuple[Path, str]) -> None:
    cfg, old_head = legacy
    svc = PolicyService.from_settings(load_settings(cfg))  # migrates to 0002 and re-anchors
    records = svc.audit.records()
    assert [r["id"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(r["signature"] is None for r in records[:5])
    upgrade = records[5]
    assert upgrade["event_type"] == "admin_change" and upgrade["signature"]
    assert upgrade["prev_hash"] == old_head
    assert upgrade["details"] == {
        "action": "audit.chain_upgrade",
        "unsigned_records": 5,
        "legacy_chain_intact": True,
    }
    res = svc.audit.verify()
    assert res.ok and res.checked == 6 and res.anchor_head_id == 6, res

    again = PolicyService.from_settings(load_settings(cfg))  # a second start does nothing
    again.audit.append("ask", principal=Principal("alice"), question="new")
    assert again.audit.head()[0] == 7 and again.audit.verify().ok


def test_tampering_with_old_records_is_still_caught(legacy: tuple[Path, str]) -> None:
    cfg, _ = legacy
    svc = PolicyService.from_settings(load_settings(cfg))
    with svc.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET answer = 'rewritten' WHERE id = 2"))
    res = svc.audit.verify()
    assert (res.ok, res.first_bad_id, res.reason_code) == (False, 2, "audit.record_altered")

    # re-chaining the old records with the public sha256 rule breaks the signed upgrade record
    prev = GENESIS.prev_hash
    with svc.engine.connect() as conn:
        rows = conn.execute(select(AuditRecordRow).order_by(AuditRecordRow.id)).all()
    from policies.audit_chain import record_dict

    with svc.engine.begin() as conn:
        for row in rows:
            content = dict(record_dict(row), prev_hash=prev)  # type: ignore[arg-type]
            new = chain_hash(prev, content)
            conn.execute(
                text("UPDATE audit_records SET prev_hash = :p, hash = :h WHERE id = :i"),
                {"p": prev, "h": new, "i": row.id},
            )
            prev = new
        conn.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    res = svc.audit.verify()
    assert (res.ok, res.first_bad_id, res.reason_code) == (False, 6, "audit.signature_invalid")


def test_a_broken_old_chain_is_upgraded_but_still_reported(db_config: Path) -> None:
    settings = load_settings(db_config)
    _MIGRATED.clear()
    engine = make_engine(settings.db_url)
    _legacy_log(engine, 4)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE id = 2"))
    svc = PolicyService.from_settings(settings)
    upgrade = svc.audit.records()[-1]
    assert upgrade["details"]["legacy_chain_intact"] is False
    assert upgrade["details"]["legacy_problem"]["first_bad_id"] == 2
    res = svc.audit.verify()
    assert (res.ok, res.first_bad_id, res.reason_code) == (False, 2, "audit.record_missing")
