"""The ``policies`` CLI end to end (Typer runner), plus one run of the installed script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from core.db import make_engine
from core.settings import load_settings
from policies.cli import app

runner = CliRunner()


def run(cfg: Path, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, [*args, "--config", str(cfg)], catch_exceptions=False)
    return res.exit_code, res.output


def test_users_lifecycle(config_file: Path) -> None:
    code, out = run(config_file, "users", "add", "alice", "--password", "correct horse battery")
    assert code == 0 and "created" in out
    code, out = run(config_file, "users", "add", "alice", "--password", "correct horse battery")
    assert code == 2 and "[account.exists]" in out
    code, out = run(config_file, "users", "add", "zed", "--password", "short")
    assert code == 2 and "account.weak_password" in out
    assert run(config_file, "users", "disable", "alice")[0] == 0
    code, out = run(config_file, "users", "list", "--json")
    alice = json.loads(out)[0]
    assert alice["name"] == "alice" and alice["disabled"] and alice["groups"] == ["everyone", "hr"]
    assert run(config_file, "users", "enable", "alice")[0] == 0
    assert (
        run(config_file, "users", "reset-password", "alice", "--password", "another long one")[0]
        == 0
    )
    code, out = run(config_file, "users", "list")
    assert "alice" in out and "active" in out
    code, out = run(config_file, "users", "disable", "ghost")
    assert code == 2 and "account.unknown" in out
    # every admin change is in the audit log
    code, out = run(config_file, "audit", "export", "--format", "jsonl")
    actions = [json.loads(x)["details"].get("action") for x in out.splitlines()[:-1]]
    assert actions == ["users.add", "users.disable", "users.enable", "users.reset_password"]


def test_licence_accept_and_status(config_file: Path, tmp_path: Path) -> None:
    model = "Meta-Llama-3-70B-Instruct"
    stmt = "Below 700 million monthly active users"
    code, out = run(
        config_file, "licence", "accept", "--model", model, "--user", "bob", "--statement", stmt
    )
    assert code == 2 and "licence.files_missing" in out
    folder = tmp_path / "data" / "licences" / "llama3"
    folder.mkdir(parents=True)
    (folder / "LICENSE").write_text("licence as distributed (test copy)\n")
    (folder / "NOTICE").write_text("notice as distributed (test copy)\n")
    code, out = run(
        config_file, "licence", "accept", "--model", model, "--user", "alice", "--statement", stmt
    )
    assert code == 4 and "policy.role_required" in out
    code, out = run(
        config_file, "licence", "accept", "--model", model, "--user", "nobody", "--statement", stmt
    )
    assert code == 2 and "policy.unknown_user" in out
    code, out = run(
        config_file, "licence", "accept", "--model", model, "--user", "bob", "--statement", stmt
    )
    assert code == 0 and "accepted" in out
    code, out = run(config_file, "licence", "status", "--json")
    rows = {r["model"]: r for r in json.loads(out)}
    assert rows[model]["accepted_by"] == "bob" and rows[model]["sha256"] is None
    code, out = run(config_file, "licence", "status")
    assert "NOT SET" in out


def test_audit_verify_export_checkpoint_purge(config_file: Path, tmp_path: Path) -> None:
    run(config_file, "users", "add", "alice", "--password", "correct horse battery")
    run(config_file, "users", "disable", "alice")
    code, out = run(config_file, "audit", "verify")
    assert code == 0 and "intact" in out
    code, out = run(config_file, "audit", "checkpoint")
    assert code == 0 and json.loads(out)["checkpoint"]["head_id"] == 2
    dest = tmp_path / "audit.csv"
    code, _ = run(
        config_file,
        "audit",
        "export",
        "--format",
        "csv",
        "--out",
        str(dest),
        "--since",
        "2000-01-01",
        "--until",
        "2999-12-31T00:00",
    )
    assert code == 0 and dest.read_text().count("\n") == 3
    side = json.loads(dest.with_name("audit.csv.manifest.json").read_text())
    assert (side["manifest"]["first_id"], side["manifest"]["last_id"]) == (1, 2)
    assert side["manifest"]["head_id"] == 2
    code, out = run(config_file, "audit", "export", "--since", "yesterday")
    assert code == 2 and "--since" in out
    code, out = run(config_file, "audit", "purge", "--older-than-days", "30")
    assert code == 2 and "audit.retention_floor" in out
    code, out = run(config_file, "audit", "purge")
    assert code == 2 and "audit.retention_unset" in out
    code, out = run(config_file, "audit", "purge", "--older-than-days", "200")
    assert code == 0 and "purged 0" in out

    engine = make_engine(load_settings(config_file).db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET details = '{}' WHERE id = 2"))
    code, out = run(config_file, "audit", "verify")
    assert code == 1 and "first bad record 2" in out
    code, out = run(config_file, "audit", "verify", "--json")
    result = json.loads(out)
    assert code == 1 and result["first_bad_id"] == 2
    assert result["reason_code"] == "audit.record_altered"


def test_audit_forget(config_file: Path) -> None:
    from policies.identity import Principal
    from policies.service import PolicyService

    svc = PolicyService.from_settings(load_settings(config_file))
    svc.audit.append("ask", principal=Principal("alice"), question="q")
    code, out = run(config_file, "audit", "forget", "--user", "alice")
    assert code == 0 and "unlinked 'alice'" in out
    assert svc.audit.records(user_id="alice") == []
    code, out = run(config_file, "audit", "forget", "--user", "alice")
    assert code == 0 and "no pseudonym for 'alice'" in out
    assert run(config_file, "audit", "verify")[0] == 0


def test_check_access_explains(config_file: Path) -> None:
    code, out = run(config_file, "check-access", "--user", "alice", "hr/handbook.pdf")
    assert code == 0 and "rule #2 'hr/**'" in out and "CAN read it via hr" in out
    code, out = run(config_file, "check-access", "--user", "alice", "hr/confidential/pay.xlsx")
    assert code == 4 and "hr-managers" in out and "CANNOT" in out
    code, out = run(config_file, "check-access", "--user", "hanna", "hr/confidential/pay.xlsx")
    assert code == 0 and "classification: confidential" in out
    code, out = run(config_file, "check-access", "--user", "bob", "general/menu.txt")
    assert code == 0 and "default applies" in out
    code, out = run(config_file, "check-access", "--user", "dave", "general/menu.txt")
    assert code == 2 and "policy.unknown_user" in out


def test_missing_rules_file_warns_and_denies(tmp_path: Path) -> None:
    from tests.policies.conftest import write_config

    cfg = write_config(tmp_path)
    (tmp_path / "access.yaml").unlink()
    res = runner.invoke(app, ["check-access", "--user", "bob", "x.txt", "--config", str(cfg)])
    assert res.exit_code == 4
    assert "not found" in res.output and "nobody" in res.output


@pytest.mark.slow
def test_installed_console_script(config_file: Path) -> None:
    exe = Path(sys.executable).with_name("policies")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env["ENCLAVE_CONFIG"] = str(config_file)
    res = subprocess.run(
        [str(exe), "audit", "verify", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["ok"] is True
