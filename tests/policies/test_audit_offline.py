"""Off-host verification of a JSON-lines export: intact, edited, dropped, re-signed."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from policies.audit_chain import canonical_json, chain_hash
from policies.audit_checkpoint import MANIFEST, anchor_body, body_payload, sign_body
from policies.audit_offline import verify_export
from policies.audit_retention import export
from policies.cli import app
from policies.identity import Principal
from policies.keys import key_id, load_or_create_signing_key, public_pem, sign
from policies.service import PolicyService


@pytest.fixture
def svc(config_file: Path) -> PolicyService:
    s = PolicyService.from_settings(load_settings(config_file))
    for i in range(6):
        s.audit.append("ask", principal=Principal(f"u{i % 2}"), question=f"q{i}", answer="a")
    return s


def _export(svc: PolicyService, **kw: object) -> list[str]:
    buf = io.StringIO()
    export(svc.audit, svc.signing_key, buf, "jsonl", **kw)  # type: ignore[arg-type]
    return buf.getvalue().splitlines()


def test_intact_export_with_trusted_key(svc: PolicyService) -> None:
    res = verify_export(_export(svc), public_pem(svc.signing_key))
    assert res.ok and res.records == 6 and res.checkpoint_head_id == 6 and res.key_trusted
    untrusted = verify_export(_export(svc))
    assert untrusted.ok and not untrusted.key_trusted and "inside the export" in untrusted.message


def test_time_window_export_verifies(svc: PolicyService) -> None:
    lines = _export(svc, since=datetime.now(UTC) - timedelta(hours=1))
    assert verify_export(lines).ok


def test_edited_line(svc: PolicyService) -> None:
    lines = _export(svc)
    rec = json.loads(lines[2])
    rec["answer"] = "changed"
    lines[2] = canonical_json(rec)
    res = verify_export(lines)
    assert (res.ok, res.first_bad_line, res.reason_code) == (False, 3, "audit.record_altered")


def test_dropped_line(svc: PolicyService) -> None:
    lines = _export(svc)
    del lines[3]
    res = verify_export(lines)
    assert (res.first_bad_line, res.reason_code) == (4, "audit.record_missing")


def test_resigned_by_another_key(svc: PolicyService, tmp_path: Path) -> None:
    """An attacker drops a record and signs everything again with their own key."""
    lines = _export(svc)
    attacker = load_or_create_signing_key(tmp_path / "attacker.key")
    records = [json.loads(x) for x in lines[:-1]]
    del records[2]
    prev = records[1]["hash"]
    for rec in records[2:]:
        rec["id"] -= 1
        rec["prev_hash"] = prev
        rec["hash"] = prev = chain_hash(prev, rec)
    for rec in records:
        body = anchor_body(rec["id"], rec["hash"], rec["ts"])
        rec["key_id"], rec["signature"] = key_id(attacker), sign(attacker, body_payload(body))
    text = "".join(canonical_json(r) + "\n" for r in records)
    body = dict(json.loads(lines[-1])["manifest"], count=len(records), last_id=records[-1]["id"])
    body.update(
        last_hash=records[-1]["hash"], records_sha256=hashlib.sha256(text.encode()).hexdigest()
    )
    manifest = canonical_json(sign_body(attacker, body, MANIFEST, embed=True).to_dict())
    forged = [*text.splitlines(), manifest]
    assert verify_export(forged).ok  # self-consistent ...
    res = verify_export(forged, public_pem(svc.signing_key))  # ... but not with the trusted key
    assert (res.ok, res.reason_code) == (False, "audit.checkpoint_invalid")


def test_missing_manifest(svc: PolicyService) -> None:
    res = verify_export(_export(svc)[:-1])
    assert res.reason_code == "audit.export_unsigned"


def test_record_signed_by_another_key(svc: PolicyService, tmp_path: Path) -> None:
    """A line edited and re-signed by a foreign key, with the manifest updated to match but
    still signed by the real key: impossible without the key; here the manifest is left
    alone, so the edit shows as a bad record signature or a manifest mismatch."""
    lines = _export(svc)
    attacker = load_or_create_signing_key(tmp_path / "attacker.key")
    rec = json.loads(lines[3])
    rec["answer"] = "changed"
    rec["hash"] = chain_hash(rec["prev_hash"], rec)
    body = anchor_body(rec["id"], rec["hash"], rec["ts"])
    rec["key_id"], rec["signature"] = key_id(attacker), sign(attacker, body_payload(body))
    lines[3] = canonical_json(rec)
    res = verify_export(lines, public_pem(svc.signing_key))
    assert not res.ok and res.reason_code in ("audit.chain_broken", "audit.signature_invalid")


def test_legacy_checkpoint_export_is_refused(svc: PolicyService) -> None:
    lines = _export(svc)
    lines[-1] = canonical_json({"checkpoint": {"head_id": 6}, "signature": "x"})
    res = verify_export(lines)
    assert (res.ok, res.reason_code) == (False, "audit.export_legacy")


def test_cli_verify_export(svc: PolicyService, config_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    dest = tmp_path / "audit.jsonl"
    res = runner.invoke(app, ["audit", "export", "--out", str(dest), "--config", str(config_file)])
    assert res.exit_code == 0
    key = tmp_path / "trusted.pem"
    key.write_text(public_pem(svc.signing_key))
    res = runner.invoke(app, ["audit", "verify-export", str(dest), "--public-key", str(key)])
    assert res.exit_code == 0 and "export intact: 6 records" in res.output
    lines = dest.read_text().splitlines()
    dest.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    res = runner.invoke(app, ["audit", "verify-export", str(dest), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["reason_code"] == "audit.record_missing"
