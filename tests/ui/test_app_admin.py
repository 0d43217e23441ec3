"""Admin pages through the real app: sources + a real background sync, models and quotas."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.apptest_helpers import button, no_exceptions, open_page, sign_in, texts
from tests.ui.conftest import UIEnv

pytestmark = pytest.mark.slow


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(str(m.label), str(m.value)) for m in at.metric]


def wait_for(at: AppTest, needle: str, timeout: float = 240) -> AppTest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        no_exceptions(at)
        if needle in texts(at):
            return at
        time.sleep(1)
    raise AssertionError(f"{needle!r} never appeared; page: {texts(at)}")


def test_sources_page_shows_state_and_runs_a_sync(use_config: UIEnv, tmp_path: Path) -> None:
    at = open_page(sign_in("adam"), "sources")
    assert "docs" in [str(s.value) for s in at.subheader]
    assert ("Files indexed", "3") in metrics(at)
    assert "Last sync: **completed**" in texts(at)

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "canteen.md").write_text("# Canteen\n\nThe canteen opens at 11:30 on weekdays.\n")
    (extra / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    at.selectbox(key="sync_choice").set_value("(a new source)")
    at.text_input(key="sync_name").set_value("extra")
    at.text_input(key="sync_root").set_value(str(extra))
    button(at, "Start sync").click()
    at.run()
    no_exceptions(at)
    at = wait_for(at, "The sync of 'extra' finished")
    assert "extra" in [str(s.value) for s in at.subheader]
    assert "broken.pdf" in "\n".join(str(d.value) for d in at.dataframe)  # failure + reason

    # While this process (the UI) holds the embedded store, the CLI is told where to go.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "sync",
            str(extra),
            "--source",
            "extra",
            "--config",
            str(use_config.config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    out = cli.stdout + cli.stderr
    assert cli.returncode != 0, out
    assert "admin page" in out and "Qdrant server" in out, out


def test_sync_form_rejects_a_missing_folder(use_config: UIEnv) -> None:
    at = open_page(sign_in("adam"), "sources")
    at.selectbox(key="sync_choice").set_value("(a new source)")
    at.text_input(key="sync_name").set_value("ghost")
    at.text_input(key="sync_root").set_value("/nonexistent/folder")
    button(at, "Start sync").click()
    at.run()
    no_exceptions(at)
    assert "does not exist" in texts(at)


def test_models_page_shows_licence_and_quotas(use_config: UIEnv) -> None:
    at = open_page(sign_in("adam"), "models")
    shown = texts(at)
    assert "may serve: approved, licence accepted, file hash OK" in shown, shown
    tables = "\n".join(str(d.value) for d in at.dataframe)
    assert "gemma-3-270m-q4_k_m" in tables
    assert "Meta-Llama-3-70B-Instruct" in tables
    assert "everyone (default)" in tables
