"""``ingest sync`` while a real ``enclave run`` UI process owns the embedded store: the CLI hands
the sync to the UI (a request row its background worker runs), follows it, prints the same JSON
summary and exits with the same codes; Ctrl-C detaches, ``--cancel-on-interrupt`` cancels; an
owner that dies fails the request instead of leaving the CLI waiting.

The UI opens the store only once a page was rendered (Streamlit has no start-up hook), so the
module's fixture loads the sign-in page once in headless Chromium (as tests/ui/test_browser.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db import session_scope
from core.errors import StoreLockedError
from core.settings import Settings, load_settings
from ingest.index import open_index
from ingest.sync import handoff
from ingest.sync.lock import store_identity
from ingest.sync.state import SyncRequestRow, SyncRunRow, open_state
from tests.ingest.conftest import REPO, run_cli, write_config, write_docs

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH = [sys.executable, "-m", "ui.launcher", "run"]
SYNC = [sys.executable, "-m", "ingest.cli", "sync"]


@dataclass
class Served:
    config: Path
    settings: Settings
    proc: subprocess.Popen[str]
    log: Path
    tmp: Path

    @property
    def engine(self) -> Any:
        return open_state(self.settings.db_url)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bulk(root: Path, n: int) -> Path:
    """``n`` small notes whose content is unique to ``root`` (a copy of content already indexed
    would reuse its vectors and take no time at all)."""
    for i in range(n):
        p = root / f"notes-{i:02d}.md"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"# Note {i} of {root.name}\n\nMeeting room {i} is booked at the desk.\n")
    return root


def _render_once(url: str, tmp: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.ui.test_browser import FLAGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        try:
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("textbox", name="User name").wait_for(timeout=300_000)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is missing in CI: .ci/run installs it")
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    tmp = tmp_path_factory.mktemp("handoff")
    config = write_config(tmp / "cfg", tmp / "data", extra="[ui]\nwarm_up = true\n")
    port = _free_port()
    log = tmp / "enclave-run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(HF_HUB_OFFLINE="1", ENCLAVE_FAULTS="commit:*=sleep:0.4;parse:*=sleep:0.3")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*LAUNCH, "--config", str(config), "--port", str(port), "--address", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    settings = load_settings(config)
    try:
        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        _render_once(url, tmp)  # the first render starts the request worker and the warm-up
        engine = open_state(settings.db_url)
        while handoff.live_owner(engine, store_identity(settings)) is None or _store_free(settings):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the UI never took the store and its requests"
            time.sleep(0.5)
        yield Served(config, settings, proc, log, tmp)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _store_free(settings: Settings) -> bool:
    try:
        open_index(settings).close()
    except StoreLockedError:
        return False
    return True


def _cli(served: Served, root: Path, source: str, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    return subprocess.Popen(
        [*SYNC, str(root), "--source", source, "--config", str(served.config), *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )


def _interruptible() -> None:
    """Ctrl-C reaches the CLI as on a terminal, even when the suite itself was started in the
    background (a shell starts background jobs with SIGINT ignored, and children inherit it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _request(served: Served, source: str) -> SyncRequestRow | None:
    with session_scope(served.engine) as s:
        row = s.scalar(
            select(SyncRequestRow)
            .where(SyncRequestRow.source == source)
            .order_by(SyncRequestRow.id.desc())
            .limit(1)
        )
        if row is not None:
            s.expunge(row)
        return row


def _wait_status(served: Served, source: str, wanted: set[str], timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        row = _request(served, source)
        if row is not None and row.status in wanted:
            return row.status
        assert time.monotonic() < deadline, f"request of {source}: {row and row.status}"
        time.sleep(0.1)


def test_cli_sync_runs_in_the_ui_and_prints_the_same_summary(served: Served) -> None:
    root = served.tmp / "docs"
    write_docs(root)
    proc = _cli(served, root, "docs", "--json")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["source"] == "docs" and summary["added"] == 6 and summary["chunks"] >= 6
    assert set(summary) >= {"run_id", "unchanged", "failed", "skipped", "seconds", "embedded"}
    assert f"pid {served.proc.pid}" in err and "Traceback" not in err
    row = _request(served, "docs")
    assert row is not None and row.status == "completed" and row.owner_pid == served.proc.pid
    with session_scope(served.engine) as s:  # the UI process ran it
        run = s.get(SyncRunRow, summary["run_id"])
        assert run is not None and run.pid == served.proc.pid and run.status == "completed"
    status = run_cli("status", "--json", "--config", str(served.config))
    [source] = [x for x in json.loads(status.stdout)["sources"] if x["source"] == "docs"]
    assert source["files"] == {"ok": 6}


def test_progress_is_followed_while_the_ui_syncs(served: Served) -> None:
    from ingest.cli import _RichProgress
    from ingest.sync.run import SyncProgress

    root = _bulk(served.tmp / "bulk-progress", 12)
    identity = store_identity(served.settings)
    request_id = handoff.submit(served.engine, identity, "progress", str(root), {})
    events: list[dict[str, Any]] = []
    bar = _RichProgress()
    summary = handoff.follow(
        served.engine, identity, request_id, lambda e: (events.append(e), bar(SyncProgress(**e)))
    )
    assert summary["added"] == 12
    phases = [e["phase"] for e in events]
    assert "sync" in phases and phases.index("sync") > 0  # queued or repair first
    assert any(e["processed"] > 0 for e in events)


def test_errors_in_the_ui_exit_with_the_same_codes(served: Served) -> None:
    root = served.tmp / "docs"
    empty = served.tmp / "unmounted"
    empty.mkdir()
    refused = _cli(served, empty, "docs", "--json")  # an empty root under an indexed source
    out, err = refused.communicate(timeout=600)
    assert refused.returncode == 2, err
    assert json.loads(out)["error"]["code"] == "ingest.root_empty"
    assert "error [ingest.root_empty]" in err and "--allow-empty-root" in err
    handed = _request(served, "docs")
    missing = _cli(served, served.tmp / "nope", "docs")  # checked here, before any hand-off
    assert missing.wait(120) == 2
    assert _request(served, "docs").id == handed.id  # type: ignore[union-attr]
    # the same source twice at once: the second refuses with exit 3, like two CLI syncs
    first = _cli(served, _bulk(served.tmp / "bulk-twice", 15), "twice", "--json")
    _wait_status(served, "twice", {"running"})
    second = _cli(served, served.tmp / "bulk-twice", "twice")
    _, err2 = second.communicate(timeout=300)
    assert second.returncode == 3, err2
    assert "[ingest.sync_running]" in err2
    assert first.wait(600) == 0
    assert root.exists()


def test_ctrl_c_detaches_and_the_sync_goes_on(served: Served) -> None:
    proc = _cli(served, _bulk(served.tmp / "bulk-detach", 40), "detach")
    _wait_status(served, "detach", {"running"})
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "detached" in err and "Traceback" not in err
    assert _wait_status(served, "detach", {"completed", "failed", "cancelled"}) == "completed"


def test_cancel_on_interrupt_stops_the_sync_in_the_ui(served: Served) -> None:
    root = _bulk(served.tmp / "bulk-cancel", 40)
    proc = _cli(served, root, "cancel", "--cancel-on-interrupt", "--json")
    _wait_status(served, "cancel", {"running"})
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert json.loads(out)["error"]["code"] == "ingest.cancelled"
    row = _request(served, "cancel")
    assert row is not None and row.status == "cancelled"
    with session_scope(served.engine) as s:
        run = s.scalar(select(SyncRunRow).order_by(SyncRunRow.id.desc()).limit(1))
        assert run is not None and run.status == "interrupted"
    again = _cli(served, root, "cancel", "--json")  # the next sync finishes the job
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    summary = json.loads(out)
    assert summary["added"] + summary["unchanged"] + summary["updated"] == 40


def test_an_owner_that_dies_fails_the_request(served: Served) -> None:
    proc = _cli(served, _bulk(served.tmp / "bulk-lost", 40), "lost", "--json")
    _wait_status(served, "lost", {"running"})
    os.killpg(served.proc.pid, signal.SIGKILL)  # the UI process is gone (last test: it stays)
    served.proc.wait()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert json.loads(out)["error"]["code"] == "ingest.handoff_lost"
