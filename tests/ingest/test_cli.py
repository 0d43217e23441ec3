"""The ``ingest`` CLI as users run it: real child processes, JSON output, exit codes, and two
syncs of one store at the same time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import load_settings
from ingest.index import open_index
from ingest.sync.lock import current_holder, store_identity
from ingest.sync.state import open_state
from tests.ingest.conftest import REPO, run_cli, write_config, write_docs

pytestmark = pytest.mark.slow


def test_sync_and_status_json(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    (root / "empty.txt").write_text("")
    cfg = write_config(tmp_path / "cfg", tmp_path / "data")
    done = run_cli("sync", str(root), "--source", "handbook", "--json", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    for key in (
        "added",
        "updated",
        "deleted",
        "unchanged",
        "renamed",
        "permissions_updated",
        "failed",
        "skipped",
        "chunks",
        "seconds",
    ):
        assert key in out, key
    assert out["added"] == 6 and out["chunks"] >= 6 and out["failed"] == []
    assert out["skipped"] == [
        {"path": "empty.txt", "code": "ingest.empty", "reason": "the file is empty"}
    ]
    assert "Traceback" not in done.stderr and "Loading weights" not in done.stderr

    st = run_cli("status", "--json", "--config", str(cfg))
    assert st.returncode == 0, st.stderr
    [source] = json.loads(st.stdout)["sources"]
    assert source["source"] == "handbook" and source["files"] == {"ok": 6, "skipped": 1}
    assert source["chunks"] == out["chunks"] and source["running"] is False
    assert source["last_sync"]["status"] == "completed"
    assert source["last_sync"]["seconds"] > 0 and source["last_sync"]["started_at"]
    assert source["recent_errors"][0]["code"] == "ingest.empty"

    human = run_cli("status", "--config", str(cfg))
    assert human.returncode == 0 and "handbook" in human.stdout and "6 ok" in human.stdout


def test_usage_and_config_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", tmp_path / "data")
    missing = run_cli("sync", str(tmp_path / "nope"), "--source", "s", "--config", str(cfg))
    assert missing.returncode == 2
    assert "[ingest.bad_argument]" in missing.stderr and "does not exist" in missing.stderr
    typo = write_config(tmp_path / "cfg2", tmp_path / "data", extra="[ingest]\nwokers = 2\n")
    bad = run_cli("sync", str(tmp_path), "--source", "s", "--json", "--config", str(typo))
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["error"]["code"] == "config.invalid"
    assert "ingest.wokers" in bad.stderr
    for proc in (missing, bad):
        assert "Traceback" not in proc.stderr
    no_source = run_cli("sync", str(tmp_path), "--config", str(cfg))
    assert no_source.returncode == 2 and "--source" in no_source.stderr


def test_second_concurrent_sync_refuses_with_exit_3(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    cfg = write_config(tmp_path / "cfg", tmp_path / "data")
    settings = load_settings(cfg)
    engine = open_state(settings.db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env["ENCLAVE_FAULTS"] = "commit:*=sleep:3"  # keep the first sync busy a little longer
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "sync",
            str(root),
            "--source",
            "handbook",
            "--json",
            "--config",
            str(cfg),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while current_holder(engine, store_identity(settings), "handbook") is None:
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline
            time.sleep(0.1)
        second = run_cli("sync", str(root), "--source", "handbook", "--config", str(cfg))
        assert second.returncode == 3, second.stderr
        assert "[ingest.sync_running]" in second.stderr
        assert "another sync of source 'handbook' is running" in second.stderr
        # Another source is not held by the sync lock; the embedded store itself allows one
        # process (with a Qdrant server both would run: test_sync.py syncs two in parallel).
        third = run_cli("sync", str(root), "--source", "other", "--config", str(cfg))
        assert third.returncode == 3, third.stderr
        assert "[index.locked]" in third.stderr
        st = json.loads(run_cli("status", "--json", "--config", str(cfg)).stdout)
        assert st["sources"][0]["running"] is True
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert json.loads(out)["added"] == 6


def test_store_held_by_another_process_exits_3(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    cfg = write_config(tmp_path / "cfg", tmp_path / "data")
    holder = open_index(load_settings(cfg))  # e.g. the UI process owning the embedded store
    try:
        proc = run_cli("sync", str(root), "--source", "handbook", "--config", str(cfg))
    finally:
        holder.close()
    assert proc.returncode == 3
    assert "[index.locked]" in proc.stderr and "Traceback" not in proc.stderr
    again = run_cli("sync", str(root), "--source", "handbook", "--json", "--config", str(cfg))
    assert again.returncode == 0 and json.loads(again.stdout)["added"] == 6
