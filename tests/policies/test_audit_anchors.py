"""External anchors of the audit chain (issue 14, item 5): the file store, a second database
(SQLite and PostgreSQL) and syslog through a real rsyslogd on loopback; forged, torn and missing
anchors; a store that cannot be written; verification with the public key only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from core.db import dispose_engines
from core.settings import load_settings
from policies.cli import app
from policies.identity import Principal
from policies.keys import load_or_create_signing_key, public_pem
from policies.service import PolicyService
from tests.conftest import pg_url
from tests.policies.conftest import write_config

ALICE = Principal("alice", frozenset({"hr"}))


def _config(tmp: Path, **policy: object) -> Path:
    cfg = write_config(tmp)
    if policy:
        lines = ["[policy]"]
        for key, value in policy.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {str(value).lower()}")
            elif isinstance(value, int):
                lines.append(f"{key} = {value}")
            else:
                lines.append(f'{key} = "{value}"')
        cfg.write_text(cfg.read_text() + "\n".join(lines) + "\n")
    return cfg


def _fill(svc: PolicyService, n: int) -> None:
    for i in range(n):
        svc.audit.append("ask", principal=ALICE, question=f"q{i}")


def _truncate(svc: PolicyService, keep: int) -> None:
    with svc.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE id > :k"), {"k": keep})
        conn.execute(
            text(
                "UPDATE audit_head SET last_id = :k, last_hash = "
                "(SELECT hash FROM audit_records WHERE id = :k)"
            ),
            {"k": keep},
        )


def _anchor_file(svc: PolicyService) -> Path:
    return svc.settings.data_dir / "audit-anchors" / "anchors.jsonl"


def test_every_append_is_anchored_in_the_file(tmp_path: Path) -> None:
    svc = PolicyService.from_settings(load_settings(_config(tmp_path)))
    _fill(svc, 4)
    anchors = _anchor_file(svc)
    assert anchors.stat().st_mode & 0o077 == 0
    lines = [json.loads(x) for x in anchors.read_text().splitlines()]
    assert [a["checkpoint"]["head_id"] for a in lines] == [1, 2, 3, 4]
    assert lines[-1]["checkpoint"]["head_hash"] == svc.audit.head()[1]
    res = svc.audit.verify()
    assert res.ok and res.anchors_checked == 4 and res.unanchored == 0


def test_removed_anchor_file_is_reported(tmp_path: Path) -> None:
    svc = PolicyService.from_settings(load_settings(_config(tmp_path)))
    _fill(svc, 3)
    _anchor_file(svc).unlink()
    res = svc.audit.verify()
    assert (res.ok, res.reason_code) == (False, "audit.anchor_missing")


def test_forged_and_torn_anchor_lines(tmp_path: Path) -> None:
    svc = PolicyService.from_settings(load_settings(_config(tmp_path)))
    _fill(svc, 3)
    anchors = _anchor_file(svc)
    original = anchors.read_text()
    anchors.write_text(original + '{"checkpoint": {"head_id": 3, "head_')  # a write cut short
    res = svc.audit.verify()
    assert res.ok and any("torn" in n for n in res.notes), res
    # someone appends an anchor claiming more records, without the key
    forged = json.loads(original.splitlines()[-1])
    forged["checkpoint"] = dict(forged["checkpoint"], head_id=50, count=50)
    anchors.write_text(original + json.dumps(forged) + "\n")
    res = svc.audit.verify()
    assert (res.ok, res.reason_code) == (False, "audit.anchor_invalid")


def test_sparse_anchors_report_the_unanchored_tail(tmp_path: Path) -> None:
    svc = PolicyService.from_settings(load_settings(_config(tmp_path, audit_anchor_every=3)))
    _fill(svc, 7)
    res = svc.audit.verify()
    assert res.ok and res.anchor_head_id == 6 and res.unanchored == 1
    assert any("not anchored" in n for n in res.notes)


def test_a_failing_store_does_not_stop_appends(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a TCP port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = _config(tmp_path, audit_anchor_syslog=f"tcp://127.0.0.1:{port}")
    svc = PolicyService.from_settings(load_settings(cfg))
    _fill(svc, 2)  # logged as a warning, the record is committed and the file still anchors
    assert svc.audit.head()[0] == 2 and svc.audit.verify().ok


def test_verify_with_the_public_key_only(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    svc = PolicyService.from_settings(load_settings(cfg))
    _fill(svc, 3)
    pem = tmp_path / "audit.pub.pem"
    pem.write_text(public_pem(svc.signing_key))
    other = tmp_path / "other.pub.pem"
    other.write_text(public_pem(load_or_create_signing_key(tmp_path / "other.key")))
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--public-key", str(pem), "--config", str(cfg)])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(
        app, ["audit", "verify", "--json", "--public-key", str(other), "--config", str(cfg)]
    )
    assert bad.exit_code == 1
    assert json.loads(bad.output)["reason_code"] == "audit.signature_invalid"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def anchor_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second database for the anchors (a fresh one on the CI PostgreSQL server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'anchors.db'}"
        return
    base = pg_url()
    if not base:
        if os.environ.get("CI"):
            pytest.fail("ENCLAVE_TEST_PG_URL is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip("ENCLAVE_TEST_PG_URL not set (PostgreSQL is started by .ci/run)")
    name = f"enclave_anchors_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_second_database_catches_a_wipe(tmp_path: Path, anchor_db_url: str) -> None:
    url_file = tmp_path / "anchor-db.url"
    url_file.write_text(anchor_db_url + "\n")
    cfg = _config(
        tmp_path, audit_anchor_file_enabled=False, audit_anchor_database_url_file=url_file
    )
    svc = PolicyService.from_settings(load_settings(cfg))
    _fill(svc, 5)
    assert not _anchor_file(svc).exists()
    res = svc.audit.verify()
    assert res.ok and res.anchors_checked == 5, res
    _truncate(svc, 2)
    res = svc.audit.verify()
    assert (res.ok, res.first_bad_id, res.reason_code) == (False, 3, "audit.truncated")
    assert "anchor database" in res.message


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real rsyslogd on loopback (UDP), writing what it receives to a file."""
    daemon = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
    )
    if daemon is None:
        if os.environ.get("CI"):
            pytest.fail("rsyslogd is missing in CI: .ci/run installs rsyslog")
        pytest.skip("rsyslogd is not installed (Debian package rsyslog)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    work = tmp_path / "rsyslog"
    work.mkdir()
    collected = work / "collected.log"
    conf = work / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{work}")\n'
        'module(load="imudp")\n'
        f'input(type="imudp" address="127.0.0.1" port="{port}")\n'
        f'*.* action(type="omfile" file="{collected}")\n'
    )
    proc = subprocess.Popen(
        [daemon, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while not (work / "rsyslogd.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        yield f"udp://127.0.0.1:{port}", collected
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_syslog_anchors_catch_a_truncation(tmp_path: Path, rsyslog: tuple[str, Path]) -> None:
    address, collected = rsyslog
    cfg = _config(tmp_path, audit_anchor_file_enabled=False, audit_anchor_syslog=address)
    svc = PolicyService.from_settings(load_settings(cfg))
    _fill(svc, 4)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if collected.exists() and collected.read_text().count("enclave-audit-anchor") >= 4:
            break
        time.sleep(0.05)
    assert collected.read_text().count("enclave-audit-anchor") == 4

    runner = CliRunner()
    args = ["audit", "verify", "--json", "--config", str(cfg)]
    res = runner.invoke(app, args)  # syslog is write-only: nothing to check against
    assert res.exit_code == 0 and "write-only" in " ".join(json.loads(res.output)["notes"])
    res = runner.invoke(app, [*args, "--anchors", str(collected)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["anchor_head_id"] == 4

    _truncate(svc, 3)
    res = runner.invoke(app, [*args, "--anchors", str(collected)])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert (out["first_bad_id"], out["reason_code"]) == (4, "audit.truncated")
