"""kill -9 at any moment, then re-run: the index ends exactly as a clean sync would.

Real ``ingest sync`` child processes are killed by SIGKILL (through the fault points of
``ingest.faults`` and at random moments); the reference is a clean sync of the same tree into a
fresh data dir. Compared: point ids, payload hashes (without ``ingested_at``) and vectors.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db import session_scope
from core.settings import Settings, load_settings
from ingest.sync.run import run_sync
from ingest.sync.state import FileRow, open_state
from tests.ingest.conftest import (
    REPO,
    assert_same_index,
    dump_index,
    run_cli,
    settings_for,
    write_config,
    write_docs,
)

pytestmark = pytest.mark.slow

SMALL_GROUPS = "[ingest]\ncommit_chunks = 2\nworkers = 1\n"


def _sync_killed_at(root: Path, cfg: Path, fault: str) -> dict[str, int]:
    """Run a sync that SIGKILLs itself at ``fault``; return the file states it left behind."""
    args = ["sync", str(root), "--source", "handbook", "--json", "--config", str(cfg)]
    proc = run_cli(*args, env={"ENCLAVE_FAULTS": fault})
    assert proc.returncode == -signal.SIGKILL, (fault, proc.returncode, proc.stderr[-2000:])
    engine = open_state(load_settings(cfg).db_url)
    with session_scope(engine) as s:
        rows = s.execute(select(FileRow.status, func.count()).group_by(FileRow.status))
        return {str(status): int(n) for status, n in rows}


def _sync_ok(root: Path, cfg: Path) -> None:
    proc = run_cli("sync", str(root), "--source", "handbook", "--json", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr[-2000:]


def _clean_reference(tmp: Path, root: Path, name: str) -> dict[str, dict[str, object]]:
    settings = settings_for(tmp, name=name, extra=SMALL_GROUPS)
    run_sync(settings, root, "handbook", workers=1)
    return dump_index(settings)


def _mutate(root: Path) -> None:
    (root / "hr/leave.md").write_text("# Annual leave\n\n30 days of paid leave from 2027.\n")
    (root / "it/passwords.txt").unlink()
    (root / "finance").rename(root / "money")
    (root / "it/printers.md").write_text("# Printers\n\nBadge readers on every floor.\n")
    (root / "engineering/oncall.md").write_text(
        (root / "engineering/oncall.md").read_text() + "\n## Escalation\n\nCall the lead.\n"
    )


def test_kill_at_fault_points_then_resync_equals_clean_sync(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    cfg = write_config(tmp_path / "crash-cfg", tmp_path / "crash", extra=SMALL_GROUPS)
    crashed: Settings = settings_for(tmp_path, name="crash", extra=SMALL_GROUPS)

    # Phase 1: first sync killed after the intent, after an upsert, after the second commit.
    left = _sync_killed_at(root, cfg, "intent:1=kill")
    assert left == {"indexing": 2}  # intents recorded, nothing committed
    left = _sync_killed_at(root, cfg, "upsert:1=kill")
    assert left.get("indexing", 0) >= 2  # points written, not committed
    left = _sync_killed_at(root, cfg, "commit:2=kill")
    assert left.get("ok", 0) >= 2
    _sync_ok(root, cfg)
    assert_same_index(dump_index(crashed), _clean_reference(tmp_path, root, "clean1"))

    # Phase 2: edits, a delete, a rename, a rule change; killed mid-delete and at a commit.
    rules = Path(str(crashed.access_rules))
    rules.write_text(rules.read_text().replace("groups: [hr]", "groups: [hr, people-ops]"))
    _mutate(root)
    left = _sync_killed_at(root, cfg, "delete:1=kill")
    assert left.get("deleting", 0) == 2  # passwords.txt and the renamed-away expenses.md
    _sync_killed_at(root, cfg, "commit:1=kill")
    _sync_ok(root, cfg)
    reference = settings_for(tmp_path, name="clean2", extra=SMALL_GROUPS)
    shutil.copy(rules, Path(str(reference.access_rules)))
    run_sync(reference, root, "handbook", workers=1)
    assert_same_index(dump_index(crashed), dump_index(reference))


def test_kill_at_random_moments_then_resync_equals_clean_sync(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    extra = SMALL_GROUPS.replace("commit_chunks = 2", "commit_chunks = 1")
    cfg = write_config(tmp_path / "crash-cfg", tmp_path / "crash", extra=extra)
    crashed = settings_for(tmp_path, name="crash", extra=extra)
    engine = open_state(crashed.db_url)
    rng = random.Random(int(os.environ.get("ENCLAVE_TEST_SEED", "2")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env["ENCLAVE_FAULTS"] = "intent:*=sleep:0.3;commit:*=sleep:0.3"  # widen the write phase
    killed = 0
    for i in range(3):
        if i == 1:
            _mutate(root)  # a repair that also meets new work
        before = _last_write(engine)
        proc = subprocess.Popen(
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
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline and _last_write(engine) == before:
            time.sleep(0.05)  # wait until this run writes its first state row
        time.sleep(rng.uniform(0.0, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
    assert killed >= 2
    _sync_ok(root, cfg)
    assert_same_index(dump_index(crashed), _clean_reference(tmp_path, root, "clean"))


def _last_write(engine: object) -> object:
    with session_scope(engine) as s:  # type: ignore[arg-type]
        return s.scalar(select(func.max(FileRow.updated_at)))
