"""Signed checkpoints, export and the retention purge (remaining chain still verifies)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from core.errors import AuditError
from core.settings import load_settings
from policies.audit_chain import FIELDS, canonical_json
from policies.audit_offline import verify_export
from policies.audit_retention import (
    RETENTION_FLOOR_DAYS,
    create_checkpoint,
    export,
    purge_older_than,
)
from policies.identity import Principal
from policies.keys import public_pem, verify_signature
from policies.service import PolicyService

ALICE = Principal("alice", frozenset({"hr"}))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def svc(db_config: Path) -> PolicyService:
    return PolicyService.from_settings(load_settings(db_config))


def _aged(svc: PolicyService, old: int, new: int, age_days: int = 400) -> None:
    real = datetime.now(UTC)
    clock = Clock(real - timedelta(days=age_days))
    svc.audit.clock = clock
    for i in range(old):
        svc.audit.append("ask", principal=ALICE, question=f"old {i}")
    clock.now = real
    for i in range(new):
        svc.audit.append("ask", principal=ALICE, question=f"new {i}")


def test_checkpoint_is_signed_and_stored(svc: PolicyService) -> None:
    svc.audit.append("ask", principal=ALICE, question="q")
    cp = create_checkpoint(svc.audit, svc.signing_key)
    assert (cp.head_id, cp.count) == (1, 1)
    assert cp.head_hash == svc.audit.records()[0]["hash"]
    payload = canonical_json(
        {"head_id": 1, "head_hash": cp.head_hash, "count": 1, "time": cp.created_at}
    ).encode()
    assert verify_signature(cp.public_key, payload, cp.signature)
    assert not verify_signature(
        cp.public_key, payload.replace(b'"count":1', b'"count":2'), cp.signature
    )
    assert [c.id for c in svc.audit.checkpoints()] == [cp.id]
    assert svc.signing_key_file.stat().st_mode & 0o777 == 0o600
    assert svc.audit_key_file.stat().st_mode & 0o777 == 0o600


def test_purge_keeps_remaining_chain_verifiable(svc: PolicyService) -> None:
    _aged(svc, old=5, new=4)
    res = purge_older_than(svc.audit, svc.signing_key, 365)
    assert (res.deleted, res.through_id) == (5, 5)
    assert [r["id"] for r in svc.audit.records()] == [6, 7, 8, 9]
    verified = svc.audit.verify()
    assert verified.ok and verified.checked == 4
    assert verified.anchor_checkpoint_id == res.checkpoint_id
    svc.audit.append("ask", principal=ALICE, question="after purge")
    assert svc.audit.verify().ok
    # tampering after a purge is still caught ...
    with svc.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET question = 'x' WHERE id = 6"))
    assert svc.audit.verify().first_bad_id == 6


def test_purge_without_anchor_checkpoint_fails_verification(svc: PolicyService) -> None:
    _aged(svc, old=3, new=2)
    purge_older_than(svc.audit, svc.signing_key, 365)
    with svc.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoints"))
    res = svc.audit.verify()
    assert (res.ok, res.first_bad_id, res.reason_code) == (False, 4, "audit.record_missing")


def test_purge_everything_then_verify(svc: PolicyService) -> None:
    _aged(svc, old=3, new=0)
    purge_older_than(svc.audit, svc.signing_key, 365)
    assert svc.audit.count() == 0 and svc.audit.verify().ok


def test_purge_nothing_old(svc: PolicyService) -> None:
    _aged(svc, old=0, new=3)
    res = purge_older_than(svc.audit, svc.signing_key, 365)
    assert res.deleted == 0 and res.checkpoint_id is None and svc.audit.count() == 3


def test_retention_floor(svc: PolicyService) -> None:
    _aged(svc, old=2, new=1, age_days=40)
    with pytest.raises(AuditError) as info:
        purge_older_than(svc.audit, svc.signing_key, 30)
    assert info.value.code == "audit.retention_floor" and "26(6)" in info.value.message
    assert svc.audit.count() == 3
    res = purge_older_than(svc.audit, svc.signing_key, 30, allow_below_floor=True)
    assert res.deleted == 2 and RETENTION_FLOOR_DAYS == 183


def _offline_verify(lines: list[dict[str, object]]) -> bool:
    """What an auditor does with an export: recompute each hash from the exported fields."""
    prev = lines[0]["prev_hash"]
    for rec in lines:
        body = {k: v for k, v in rec.items() if k in FIELDS}
        if rec["prev_hash"] != prev:
            return False
        digest = hashlib.sha256((str(prev) + canonical_json(body)).encode()).hexdigest()
        if digest != rec["hash"]:
            return False
        prev = rec["hash"]
    return True


def test_export_jsonl_with_checkpoint_and_time_window(svc: PolicyService) -> None:
    _aged(svc, old=3, new=2, age_days=10)
    buf = io.StringIO()
    n, manifest = export(svc.audit, svc.signing_key, buf, "jsonl")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert n == 5 and len(lines) == 6
    records, last = lines[:5], lines[5]
    assert _offline_verify(records)
    assert last["manifest"]["last_hash"] == records[-1]["hash"] == manifest.body["last_hash"]
    assert (last["manifest"]["first_id"], last["manifest"]["last_id"]) == (1, 5)
    payload = canonical_json(last["manifest"]).encode()
    assert verify_signature(last["public_key"], payload, last["signature"])
    records[1]["answer"] = "edited in the export"
    assert not _offline_verify(records)

    window = io.StringIO()
    since = datetime.now(UTC) - timedelta(days=1)
    n, _ = export(svc.audit, svc.signing_key, window, "jsonl", since=since)
    assert n == 3  # the 2 new records and the audit record of the first export
    assert json.loads(window.getvalue().splitlines()[2])["details"]["action"] == "audit.export"
    assert verify_export(window.getvalue().splitlines(), public_pem(svc.signing_key)).ok
    until = io.StringIO()
    n, _ = export(svc.audit, svc.signing_key, until, "jsonl", until=since)
    assert n == 3


def test_export_csv(svc: PolicyService) -> None:
    svc.audit.append("feedback", principal=ALICE, details={"rating": "up"})
    buf = io.StringIO()
    n, manifest = export(svc.audit, svc.signing_key, buf, "csv")
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert n == 1 and rows[0]["event_type"] == "feedback"
    assert json.loads(rows[0]["details"]) == {"rating": "up"}
    assert rows[0]["hash"] == manifest.body["last_hash"] and rows[0]["signature"]
    with pytest.raises(AuditError):
        export(svc.audit, svc.signing_key, buf, "xml")
