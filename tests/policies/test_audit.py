"""The audit chain on real SQLite and PostgreSQL: append, verify, and every kind of tampering
done with raw SQL (edit, delete, insert, reorder, rewrite), checkpoints and erasure."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from core.errors import AuditError
from core.settings import load_settings
from policies.audit import AuditLog
from policies.audit_chain import chain_hash, record_dict
from policies.audit_retention import create_checkpoint
from policies.identity import Principal
from policies.service import PolicyService
from policies.tables import AuditRecordRow

ALICE = Principal("alice", frozenset({"hr", "everyone"}))
BOB = Principal("bob", frozenset({"engineering"}))


@pytest.fixture
def svc(db_config: Path) -> PolicyService:
    return PolicyService.from_settings(load_settings(db_config))


def _fill(svc: PolicyService, n: int = 8) -> list[int]:
    return [
        svc.audit.append(
            "ask",
            principal=ALICE if i % 2 else BOB,
            question=f"question {i}",
            retrieved=[{"doc_id": f"d{i}", "chunk_id": f"c{i}"}],
            model_name="gemma-3-270m-q4_k_m",
            model_sha256="a" * 64,
            policy_version=svc.version,
            answer=f"answer {i}",
            latency_ms=12.5 + i,
            prompt_tokens=100 + i,
            completion_tokens=20 + i,
            details={"n": i},
        )
        for i in range(n)
    ]


def _sql(svc: PolicyService, sql: str, **params: object) -> None:
    with svc.engine.begin() as conn:
        conn.execute(text(sql), params)


def _bad(svc: PolicyService) -> tuple[int | None, str]:
    res = svc.audit.verify()
    assert not res.ok
    return res.first_bad_id, res.reason_code


def test_append_stores_every_field_and_verifies(svc: PolicyService) -> None:
    ids = _fill(svc, 3)
    assert ids == [1, 2, 3]
    rec = svc.audit.records()[1]
    assert rec["event_type"] == "ask" and rec["groups"] == ["everyone", "hr"]
    assert rec["retrieved"] == [{"doc_id": "d1", "chunk_id": "c1"}]
    assert (rec["model_name"], rec["model_sha256"]) == ("gemma-3-270m-q4_k_m", "a" * 64)
    assert (rec["latency_ms"], rec["prompt_tokens"], rec["completion_tokens"]) == (14, 101, 21)
    assert rec["policy_version"] == svc.version and rec["details"] == {"n": 1}
    assert rec["user_pseudonym"] and "alice" not in json.dumps(rec)
    assert rec["prev_hash"] == svc.audit.records()[0]["hash"]
    res = svc.audit.verify()
    assert res.ok and res.checked == 3 and res.head_id == 3


def test_no_update_or_delete_api() -> None:
    public = {n for n in dir(AuditLog) if not n.startswith("_")}
    assert not {n for n in public if n.startswith(("update", "delete", "edit", "remove"))}


def test_pii_masked_with_keyed_hash(svc: PolicyService) -> None:
    q = "Is IBAN GB82 WEST 1234 5698 7654 32 of jane@example.com on file?"
    svc.audit.append("ask", principal=ALICE, question=q, answer="call +46 70 123 45 67")
    rec = svc.audit.records()[0]
    assert rec["question"] == "Is IBAN [IBAN] of [EMAIL] on file?"
    assert rec["answer"] == "call [PHONE]"
    assert rec["question_hmac"] == svc.audit.key.digest("text", q)
    with svc.engine.connect() as conn:
        dump = " ".join(
            str(v) for row in conn.execute(text("SELECT * FROM audit_records")) for v in row
        )
    assert "jane@example.com" not in dump and "GB82" not in dump


def test_edit_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, "UPDATE audit_records SET answer = 'a different answer' WHERE id = 5")
    assert _bad(svc) == (5, "audit.record_altered")


def test_edit_of_groups_or_time_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, """UPDATE audit_records SET groups = '["admin"]' WHERE id = 2""")
    assert _bad(svc) == (2, "audit.record_altered")


def test_delete_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, "DELETE FROM audit_records WHERE id = 4")
    first_bad, code = _bad(svc)
    assert (first_bad, code) == (4, "audit.record_missing")
    assert "record 4 is missing" in svc.audit.verify().message


def test_truncation_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, "DELETE FROM audit_records WHERE id >= 7")
    assert _bad(svc) == (7, "audit.record_missing")


def test_delete_first_record_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, "DELETE FROM audit_records WHERE id = 1")
    assert _bad(svc) == (2, "audit.record_missing")


def _forge(svc: PolicyService, rid: int, prev_hash: str) -> dict[str, object]:
    """A self-consistent forged record, as an attacker with the schema would write it."""
    src = svc.audit.records()[0]
    values = dict(src, id=rid, prev_hash=prev_hash, question="forged question")
    row = AuditRecordRow(
        **{
            k: (json.dumps(v) if k in ("groups", "retrieved", "decisions", "details") else v)
            for k, v in values.items()
            if k != "hash"
        }
    )
    row.ts = datetime.fromisoformat(str(values["ts"]).replace("Z", "+00:00"))
    values["hash"] = chain_hash(prev_hash, record_dict(row))
    for k in ("groups", "retrieved", "decisions", "details"):
        values[k] = json.dumps(values[k])
    values["ts"] = row.ts
    return values


def _insert(svc: PolicyService, values: dict[str, object]) -> None:
    cols = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    _sql(svc, f"INSERT INTO audit_records ({cols}) VALUES ({params})", **values)


def test_insert_in_the_middle_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    hash3 = svc.audit.records()[2]["hash"]
    # make room after record 3 (two steps: ids are a primary key), then insert a forged record
    _sql(svc, "UPDATE audit_records SET id = id + 1000 WHERE id >= 4")
    _sql(svc, "UPDATE audit_records SET id = id - 999 WHERE id >= 1000")
    _insert(svc, _forge(svc, 4, hash3))
    # the forged record links and hashes correctly, but the signature it copied does not cover
    # it (and a new one needs the signing key)
    assert _bad(svc) == (4, "audit.signature_invalid")


def test_insert_at_the_end_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    head_hash = svc.audit.records()[-1]["hash"]
    _insert(svc, _forge(svc, 9, head_hash))
    assert _bad(svc) == (9, "audit.record_unregistered")


def test_reorder_is_detected(svc: PolicyService) -> None:
    _fill(svc)
    _sql(svc, "UPDATE audit_records SET id = 100 WHERE id = 3")
    _sql(svc, "UPDATE audit_records SET id = 3 WHERE id = 6")
    _sql(svc, "UPDATE audit_records SET id = 6 WHERE id = 100")
    assert _bad(svc) == (3, "audit.chain_broken")


def test_full_rewrite_is_caught_by_the_record_signatures(svc: PolicyService) -> None:
    _fill(svc)
    create_checkpoint(svc.audit, svc.signing_key)
    # the attacker edits record 6 and recomputes every later hash and the head
    _sql(svc, "UPDATE audit_records SET answer = 'rewritten' WHERE id = 6")
    prev = svc.audit.records()[4]["hash"]
    for rid in range(6, 9):
        with svc.engine.connect() as conn:
            row = conn.execute(select(AuditRecordRow).where(AuditRecordRow.id == rid)).one()
        content = dict(record_dict(row), prev_hash=prev)  # type: ignore[arg-type]
        new_hash = chain_hash(prev, content)
        _sql(
            svc,
            "UPDATE audit_records SET prev_hash = :p, hash = :h WHERE id = :i",
            p=prev,
            h=new_hash,
            i=rid,
        )
        prev = new_hash
    _sql(svc, "UPDATE audit_head SET last_hash = :h", h=prev)
    assert _bad(svc) == (6, "audit.signature_invalid")
    # without the record signatures, the signed checkpoint at the head still catches it
    _sql(svc, "UPDATE audit_records SET signature = NULL, key_id = NULL")
    assert _bad(svc) == (8, "audit.checkpoint_mismatch")


def test_forged_checkpoint_is_rejected(svc: PolicyService) -> None:
    _fill(svc, 3)
    create_checkpoint(svc.audit, svc.signing_key)
    assert svc.audit.verify().ok
    _sql(svc, "UPDATE audit_checkpoints SET head_hash = :h", h="f" * 64)
    assert _bad(svc) == (3, "audit.checkpoint_invalid")


def test_checkpoint_from_an_untrusted_key_is_rejected(svc: PolicyService, tmp_path: Path) -> None:
    from policies.keys import load_or_create_signing_key

    _fill(svc, 2)
    create_checkpoint(svc.audit, load_or_create_signing_key(tmp_path / "attacker.key"))
    assert _bad(svc) == (2, "audit.checkpoint_invalid")


def test_pseudonyms_and_erasure(svc: PolicyService) -> None:
    _fill(svc, 4)
    a1 = svc.audit.pseudonym("alice")
    assert a1 == svc.audit.pseudonym("alice") != svc.audit.pseudonym("bob")
    assert len(svc.audit.records(user_id="alice")) == 2
    assert svc.forget_user("alice")
    assert svc.audit.records(user_id="alice") == []
    assert svc.audit.pseudonym("alice", create=False) is None
    assert svc.audit.pseudonym("alice") != a1  # a new, unlinkable pseudonym
    assert svc.audit.verify().ok  # erasure does not touch the chain


def test_unknown_event_type_refused(svc: PolicyService) -> None:

    with pytest.raises(AuditError) as info:
        svc.audit.append("coffee_break", principal=ALICE)
    assert info.value.code == "audit.bad_event"
    assert svc.audit.head() == (0, "0" * 64)


def test_retrieved_accepts_dicts_tuples_and_dataclass(svc: PolicyService) -> None:
    from policies.audit import Retrieved

    svc.audit.append(
        "ask",
        principal=ALICE,
        retrieved=[Retrieved("d1", "c1"), ("d2", "c2"), {"doc_id": "d3", "chunk_id": "c3"}],
    )
    assert svc.audit.records()[0]["retrieved"] == [
        {"doc_id": "d1", "chunk_id": "c1"},
        {"doc_id": "d2", "chunk_id": "c2"},
        {"doc_id": "d3", "chunk_id": "c3"},
    ]
