"""Admin pages through the real app: sources + a real background sync, models, licence, quotas."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from tests.ui.apptest_helpers import button, no_exceptions, open_page, sign_in, texts
from tests.ui.conftest import UIEnv, make_env
from ui import runtime
from ui.admin_models import quotas_from_rows
from ui.admin_sources import plain_result
from ui.sync_runner import SyncState

pytestmark = pytest.mark.slow


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(str(m.label), str(m.value)) for m in at.metric]


def wait_for(at: AppTest, needle: str, timeout: float = 240) -> AppTest:
    """Re-run the page the way its fragment does (AppTest does not run timers)."""
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
    assert "3 files added" in texts(at)  # the last result in plain words, not counters

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
    at = wait_for(at, "The sync of extra finished")
    assert "1 file added" in texts(at) and "1 file failed" in texts(at)
    assert "extra" in [str(s.value) for s in at.subheader]
    assert "broken.pdf" in "\n".join(str(d.value) for d in at.dataframe)  # failure + reason

    # While this process (the UI) holds the embedded store, the CLI hands its sync to it and
    # follows it to the end (ingest/sync/handoff.py).
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
    assert cli.returncode == 0, out
    assert f"the UI process (pid {os.getpid()}) owns the index" in out, out
    assert "sync of source 'extra'" in out, out  # the summary of the run the UI made


def test_file_names_in_the_sync_panel_are_text(use_config: UIEnv) -> None:
    """Issue 14, item 16: a file name is shown as a name, never as Markdown (an image name
    made the browser fetch it)."""
    runner = runtime.for_key().sync_runner()
    evil = "![x](http://evil.example/x.png?leak=1) [y](http://evil.example/) _z_.md"
    saved = runner._state
    runner._state = SyncState(
        source="[src](http://evil.example/s)",
        root="/srv/![r](http://evil.example/r.png)",
        started_at=time.time(),
        phase="sync",
        scanned=5,
        processed=3,
        current=evil,
    )
    try:
        at = open_page(sign_in("adam"), "sources")
    finally:
        runner._state = saved
    parser = MarkdownIt("commonmark")
    shown = [str(e.value) for e in [*at.markdown, *at.caption] if "evil" in str(e.value)]
    assert len(shown) >= 2, texts(at)
    for markdown in shown:
        rendered = parser.render(markdown)
        assert "<img" not in rendered and "<a " not in rendered, markdown
    assert any("x\\.png" in m for m in shown)  # still readable, as text


def test_sync_form_rejects_a_missing_folder(use_config: UIEnv) -> None:
    at = open_page(sign_in("adam"), "sources")
    at.selectbox(key="sync_choice").set_value("(a new source)")
    at.text_input(key="sync_name").set_value("ghost")
    at.text_input(key="sync_root").set_value("/nonexistent/folder")
    button(at, "Start sync").click()
    at.run()
    no_exceptions(at)
    assert "does not exist" in texts(at)


def test_results_in_plain_words() -> None:
    assert plain_result(
        {"added": 3, "updated": 1, "deleted": 0, "unchanged": 12, "failed": 1, "embedded": 41}
    ) == (
        "3 files added, 1 file changed; 12 files unchanged; 1 file failed (reasons below). "
        "41 passages indexed."
    )
    assert plain_result({"unchanged": 5}) == (
        "no file added, changed or removed; 5 files unchanged."
    )


def test_models_page_shows_licence_and_quotas(use_config: UIEnv) -> None:
    at = open_page(sign_in("adam"), "models")
    shown = texts(at)
    assert "may serve: approved, licence accepted, file hash OK" in shown, shown
    tables = "\n".join(str(d.value) for d in at.dataframe)
    assert "gemma-3-270m-q4_k_m" in tables
    assert "Meta-Llama-3-70B-Instruct" in tables


def test_admin_accepts_a_licence_in_the_ui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, sync=False)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    licences = tmp_path / "data" / "licences" / "llama3"
    licences.mkdir(parents=True)
    (licences / "LICENSE").write_text("META LLAMA 3 COMMUNITY LICENSE AGREEMENT (test copy)\n")
    (licences / "NOTICE").write_text("Meta Llama 3 is licensed under the Meta Llama 3 ...\n")
    at = open_page(sign_in("adam"), "models")
    at.selectbox(key="licence_model").set_value("Meta-Llama-3-70B-Instruct")
    at.text_input(key="licence_statement").set_value("We are a small firm")
    button(at, "Accept the licence").click()
    at.run()
    no_exceptions(at)
    assert "700 million" in texts(at)  # refused with the licence gate's own reason
    at.text_input(key="licence_statement").set_value("Below 700 million monthly active users")
    button(at, "Accept the licence").click()
    at.run()
    no_exceptions(at)
    assert "accepted for Meta\\-Llama\\-3\\-70B\\-Instruct by adam" in texts(at), texts(at)
    records = runtime.for_key().policies().audit.records(event_type="licence_acceptance")
    assert records and records[-1]["details"]["statement"].startswith("Below 700 million")
    # A non-admin cannot even reach the form (page refusal), and the gate checks the role too.
    assert "does not have the 'admin' role" in texts(open_page(sign_in("alice"), "models"))


def test_quotas_changed_by_an_admin_are_in_force_and_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, sync=False)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    at = open_page(sign_in("adam"), "models")
    [editor] = [d.value for d in at.dataframe if "requests per day" in d.value.columns]
    assert list(editor["applies to"]) == ["default"]
    # The page's Save button writes the table (unedited here: AppTest cannot type into a
    # data editor; the browser can) and audits the change.
    button(at, "Save quotas").click()
    at.run()
    no_exceptions(at)
    saved = tmp_path / "data" / "usage-policy.yaml"
    assert saved.is_file()
    first = runtime.for_key().policies().audit.records(event_type="admin_change")
    assert first and first[-1]["details"]["change"] == "usage_limits"
    rows = [
        {
            "applies to": "default",
            "name": "",
            "requests per day": 1,
            "tokens per day": None,
            "requests per minute": None,
        },
        {
            "applies to": "user",
            "name": "alice",
            "requests per day": 2,
            "tokens per day": None,
            "requests per minute": 1,
        },
    ]
    default, groups, users = quotas_from_rows(rows)
    policies = runtime.for_key().policies()
    adam = policies.current_principal("adam")
    assert adam is not None
    policies.set_usage_limits(adam, default, groups, users)
    at.run()
    [editor] = [d.value for d in at.dataframe if "requests per day" in d.value.columns]
    assert list(editor["name"]) == ["", "alice"]
    change = policies.audit.records(event_type="admin_change")[-1]["details"]
    assert (
        change["change"] == "usage_limits"
        and change["after"]["users"]["alice"]["requests_per_day"] == 2
    )
    # In force at once: cora (default, 1 a day) gets one answer, then the quota refusal.
    cora = sign_in("cora")
    for question in ("What is the hotel budget?", "And for trains?"):
        cora.chat_input[0].set_value(question)
        cora.run()
    assert any("daily number of questions" in str(w.value) for w in cora.warning), texts(cora)
    with pytest.raises(ValueError):
        quotas_from_rows([{"applies to": "user", "name": "", "requests per day": 1}])
    with pytest.raises(ValueError):
        quotas_from_rows([{"applies to": "default", "requests per day": -3}])
    from core.errors import AccessDeniedError

    alice = policies.current_principal("alice")
    assert alice is not None
    with pytest.raises(AccessDeniedError):
        policies.set_usage_limits(alice, default, groups, users)
