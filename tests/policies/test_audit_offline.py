"""Off-host verification of a JSON-lines export: intact, edited, dropped, re-signed."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from policies.audit_chain import canonical_json
from policies.audit_offline import verify_export
from policies.audit_retention import export
from policies.cli import app
from policies.identity import Principal
from policies.keys import load_or_create_signing_key, public_pem, sign
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
    lines = _export(svc)
    attacker = load_or_create_signing_key(tmp_path / "attacker.key")
    cp = json.loads(lines[-1])
    cp["signature"] = sign(attacker, canonical_json(cp["checkpoint"]).encode())
    cp["public_key"] = public_pem(attacker)
    lines[-1] = canonical_json(cp)
    assert verify_export(lines).ok  # self-consistent ...
    res = verify_export(lines, public_pem(svc.signing_key))  # ... but not with the trusted key
    assert (res.ok, res.reason_code) == (False, "audit.checkpoint_invalid")


def test_missing_checkpoint(svc: PolicyService) -> None:
    res = verify_export(_export(svc)[:-1])
    assert res.reason_code == "audit.export_unsigned"


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
