"""Issue 14, item 5: an attacker who can write the audit database (but holds no key file and
cannot rewrite the external anchor store) tries to hide records. Each attack verified as intact
before the keyed chain and the external anchors; each must be caught now, on SQLite and on
PostgreSQL, by ``policies audit verify`` (and by ``verify-export`` for a cut export)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from core.settings import load_settings
from policies.audit_chain import chain_hash, record_dict
from policies.audit_offline import verify_export
from policies.audit_retention import create_checkpoint, export
from policies.cli import app
from policies.identity import Principal
from policies.keys import public_pem
from policies.service import PolicyService
from policies.tables import GENESIS_HASH, AuditRecordRow

ALICE = Principal("alice", frozenset({"hr", "everyone"}))


@pytest.fixture
def svc(db_config: Path) -> PolicyService:
    return PolicyService.from_settings(load_settings(db_config))


def _fill(svc: PolicyService, n: int = 10) -> None:
    for i in range(n):
        svc.audit.append("ask", principal=ALICE, question=f"question {i}", answer=f"answer {i}")


def _sql(svc: PolicyService, sql: str, **params: Any) -> None:
    with svc.engine.begin() as conn:
        conn.execute(text(sql), params)


def _rechain_from(svc: PolicyService, first: int) -> None:
    """What an attacker with write access does after editing: recompute every later hash with
    the public sha256 rule and move the head, so the stored chain is self-consistent."""
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecordRow).where(AuditRecordRow.id >= first).order_by(AuditRecordRow.id)
        ).all()
        prev = conn.execute(
            select(AuditRecordRow.hash).where(AuditRecordRow.id == first - 1)
        ).scalar() or (GENESIS_HASH)
    for row in rows:
        content = dict(record_dict(row), prev_hash=prev)  # type: ignore[arg-type]
        new_hash = chain_hash(prev, content)
        _sql(
            svc,
            "UPDATE audit_records SET prev_hash = :p, hash = :h WHERE id = :i",
            p=prev,
            h=new_hash,
            i=row.id,
        )
        prev = new_hash
    _sql(svc, "UPDATE audit_head SET last_hash = :h", h=prev)


def _failed(svc: PolicyService) -> tuple[int | None, str]:
    res = svc.audit.verify()
    assert not res.ok, f"tampering verified as intact: {res}"
    return res.first_bad_id, res.reason_code


def test_untouched_log_verifies_against_the_external_anchor(svc: PolicyService) -> None:
    _fill(svc)
    res = svc.audit.verify()
    assert res.ok, res
    assert res.anchor_head_id == 10


def test_truncated_tail_with_head_moved_back(svc: PolicyService) -> None:
    _fill(svc)
    head6 = svc.audit.records()[5]["hash"]
    _sql(svc, "DELETE FROM audit_records WHERE id > 6")
    _sql(svc, "UPDATE audit_head SET last_id = 6, last_hash = :h", h=head6)
    assert _failed(svc) == (7, "audit.truncated")


def test_every_record_rechained(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, "UPDATE audit_records SET answer = 'nothing to see' WHERE id = 3")
    _rechain_from(svc, 3)
    assert _failed(svc) == (3, "audit.signature_invalid")


def test_rechained_after_deleting_the_checkpoints(svc: PolicyService) -> None:
    _fill(svc)
    create_checkpoint(svc.audit, svc.signing_key)
    _sql(svc, "DELETE FROM audit_records WHERE id = 4")
    _sql(svc, "UPDATE audit_records SET id = id - 1 WHERE id > 4")
    _sql(svc, "DELETE FROM audit_checkpoints")
    _rechain_from(svc, 4)
    _sql(svc, "UPDATE audit_head SET last_id = 9")
    first_bad, _code = _failed(svc)
    assert first_bad == 4


def test_everything_wiped(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, "DELETE FROM audit_records")
    _sql(svc, "DELETE FROM audit_checkpoints")
    _sql(svc, "UPDATE audit_head SET last_id = 0, last_hash = :h", h=GENESIS_HASH)
    assert _failed(svc) == (1, "audit.truncated")


def test_forged_record_appended_with_the_head_moved(svc: PolicyService) -> None:
    _fill(svc, 3)
    src = svc.audit.records()[-1]
    _sql(
        svc,
        "INSERT INTO audit_records (id, ts, event_type, user_pseudonym, groups, question, "
        "question_hmac, retrieved, model_name, model_sha256, policy_version, decisions, answer, "
        "answer_hmac, latency_ms, prompt_tokens, completion_tokens, details, prev_hash, hash) "
        "SELECT 4, ts, event_type, user_pseudonym, groups, 'forged', question_hmac, retrieved, "
        "model_name, model_sha256, policy_version, decisions, answer, answer_hmac, latency_ms, "
        "prompt_tokens, completion_tokens, details, hash, 'x' FROM audit_records WHERE id = 3",
    )
    _sql(svc, "UPDATE audit_head SET last_id = 4")
    _rechain_from(svc, 4)
    assert src["id"] == 3
    first_bad, code = _failed(svc)
    assert (first_bad, code) == (4, "audit.signature_missing")


def test_cli_verify_exits_1_on_truncation(svc: PolicyService, db_config: Path) -> None:
    _fill(svc, 4)
    _sql(svc, "DELETE FROM audit_records WHERE id = 4")
    _sql(
        svc,
        "UPDATE audit_head SET last_id = 3, last_hash = (SELECT hash FROM audit_records "
        "WHERE id = 3)",
    )
    res = CliRunner().invoke(app, ["audit", "verify", "--json", "--config", str(db_config)])
    assert res.exit_code == 1, res.output
    assert json.loads(res.output)["reason_code"] == "audit.truncated"


def _export_lines(svc: PolicyService) -> list[str]:
    buf = io.StringIO()
    export(svc.audit, svc.signing_key, buf, "jsonl")
    return buf.getvalue().splitlines()


@pytest.mark.parametrize("cut", ["head", "tail", "both"])
def test_cut_export_fails(svc: PolicyService, cut: str) -> None:
    _fill(svc, 6)
    lines = _export_lines(svc)
    trusted = public_pem(svc.signing_key)
    assert verify_export(lines, trusted).ok
    records, manifest = lines[:-1], lines[-1]
    kept = {"head": records[2:], "tail": records[:-2], "both": records[1:-1]}[cut]
    res = verify_export([*kept, manifest], trusted)
    assert not res.ok, f"an export cut at the {cut} verified: {res}"
    assert res.reason_code == "audit.export_cut"


def test_signatures_stripped_from_the_newest_records(svc: PolicyService) -> None:
    _fill(svc, 6)
    _sql(svc, "UPDATE audit_records SET signature = NULL, key_id = NULL WHERE id >= 5")
    assert _failed(svc) == (5, "audit.signature_missing")


def test_chain_resigned_by_the_key_holder_is_caught_by_the_anchors(svc: PolicyService) -> None:
    """Someone with the app host's key rewrites record 3 and signs everything again: the walk
    passes, the anchors written before the rewrite do not."""
    from policies.audit_chain import format_ts
    from policies.audit_checkpoint import anchor_body, body_payload
    from policies.keys import sign

    _fill(svc, 6)
    _sql(svc, "UPDATE audit_records SET answer = 'rewritten' WHERE id = 3")
    _rechain_from(svc, 3)
    with svc.engine.connect() as conn:
        rows = conn.execute(select(AuditRecordRow).where(AuditRecordRow.id >= 3)).all()
    for row in rows:
        body = anchor_body(row.id, row.hash, format_ts(row.ts))
        _sql(
            svc,
            "UPDATE audit_records SET signature = :s WHERE id = :i",
            s=sign(svc.signing_key, body_payload(body)),
            i=row.id,
        )
    assert svc.audit.verify(with_anchors=False).ok  # the chain alone looks intact
    assert _failed(svc) == (3, "audit.anchor_mismatch")


def test_restore_of_an_older_backup_is_reported_until_declared(
    svc: PolicyService, db_config: Path
) -> None:
    """A legitimate restore loses records: verify says so (truncated) until an admin declares
    the loss in a signed record; the declaration stays visible and hides no later change."""
    _fill(svc, 10)
    head6 = svc.audit.records()[5]["hash"]
    _sql(svc, "DELETE FROM audit_records WHERE id > 6")  # what restoring a backup looks like
    _sql(svc, "UPDATE audit_head SET last_id = 6, last_hash = :h", h=head6)
    assert _failed(svc) == (7, "audit.truncated")

    runner = CliRunner()
    cmd = ["audit", "acknowledge-loss", "--config", str(db_config)]
    res = runner.invoke(app, [*cmd, "--reason", "restored the backup of 2026-11-28"])
    assert res.exit_code == 0, res.output
    assert "records 7..10 declared lost in record 7" in res.output
    _fill(svc, 5)  # ids 8..12 reuse the lost ids: their anchors are newer than the declaration
    res_ok = svc.audit.verify()
    assert res_ok.ok, res_ok
    assert any("7..10 were declared lost in record 7" in n for n in res_ok.notes)
    [decl] = svc.audit.records(event_type="admin_change")
    assert decl["details"]["reason"] == "restored the backup of 2026-11-28"

    _sql(svc, "DELETE FROM audit_records WHERE id = 12")  # a later truncation is still caught
    _sql(
        svc,
        "UPDATE audit_head SET last_id = 11, last_hash = (SELECT hash FROM audit_records "
        "WHERE id = 11)",
    )
    assert _failed(svc) == (12, "audit.truncated")
    res = runner.invoke(app, [*cmd, "--reason", ""])
    assert res.exit_code == 2
