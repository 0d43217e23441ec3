"""Fixtures for the sync tests: a state database on SQLite and on the CI PostgreSQL server, a
small handbook tree written by the tests, and helpers to dump the index for comparisons."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings, load_settings
from ingest.index import open_index

REPO = Path(__file__).resolve().parents[2]

RULES_YAML = """\
default: [everyone]
default_classification: internal
rules:
  - path: "hr/confidential/**"
    groups: [hr-managers]
    classification: confidential
  - path: "hr/**"
    groups: [hr]
  - path: "public/**"
    groups: []
"""

DOCS: dict[str, str] = {
    "hr/leave.md": "# Annual leave\n\nEmployees get 25 days of paid leave per year. "
    "Unused days carry over until March.\n\n## Sick leave\n\nReport sick leave to your manager "
    "before 9am on the first day.\n",
    "hr/confidential/salaries.md": "# Salary bands\n\nBand A ranges from 40k to 55k. Band B "
    "ranges from 55k to 75k. Reviews happen every April.\n",
    "it/vpn.md": "# VPN\n\nInstall the client from the portal. Use your badge number as the "
    "username. The VPN is required on hotel and airport networks.\n",
    "it/passwords.txt": "Passwords must be at least 14 characters long. Use the company "
    "password manager. Never reuse a password across services.\n",
    "finance/expenses.md": "# Expenses\n\nSubmit receipts within 30 days. Meals are reimbursed "
    "up to 40 euros per day while travelling. Taxis need a note.\n",
    "engineering/oncall.md": "# On-call\n\nThe on-call engineer answers pages within 15 "
    "minutes. Handover is on Monday at 10am with a written summary.\n",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("pg_database"))


def write_docs(root: Path, docs: dict[str, str] | None = None) -> None:
    for rel, text in (docs or DOCS).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def write_config(where: Path, data_dir: Path, db_url: str | None = None, extra: str = "") -> Path:
    """A TOML config like an admin would write (access rules beside it)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "access.yaml").write_text(RULES_YAML)
    lines = [f'data_dir = "{data_dir}"', 'access_rules = "access.yaml"']
    if db_url:
        lines.append(f'database_url = "{db_url}"')
    cfg = where / "enclave.toml"
    cfg.write_text("\n".join(lines) + "\n" + extra)
    return cfg


def settings_for(
    tmp: Path, db_url: str | None = None, name: str = "data", extra: str = ""
) -> Settings:
    cfg = write_config(tmp / f"{name}-cfg", tmp / name, db_url, extra)
    return load_settings(cfg)


def dump_index(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every point: payload (without ``ingested_at``), its hash and the rounded dense vector."""
    out: dict[str, dict[str, Any]] = {}
    index = open_index(settings)
    try:
        for batch in index.scroll_points():
            for p in batch:
                payload = {k: v for k, v in p.payload.items() if k != "ingested_at"}
                digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
                out[p.id] = {"payload": payload, "hash": digest, "dense": p.dense}
    finally:
        index.close()
    return out


def assert_same_index(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> None:
    assert sorted(a) == sorted(b), (
        f"point ids differ: only in first {sorted(set(a) - set(b))[:5]}, "
        f"only in second {sorted(set(b) - set(a))[:5]}"
    )
    for pid in a:
        assert a[pid]["hash"] == b[pid]["hash"], (pid, a[pid]["payload"], b[pid]["payload"])
        diff = max(abs(x - y) for x, y in zip(a[pid]["dense"], b[pid]["dense"], strict=True))
        assert diff < 1e-3, (pid, diff)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ingest.cli ...`` as a real child process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
