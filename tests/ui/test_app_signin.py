"""Sign-in, sessions and role checks through the real app (AppTest, in-process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.apptest_helpers import APP, TIMEOUT, button, no_exceptions, open_page, sign_in, texts
from tests.ui.conftest import PASSWORD, UIEnv, make_env
from ui import runtime
from ui.auth import SESSION_KEY

pytestmark = pytest.mark.slow


def cookie_of(at: AppTest) -> str:
    store = runtime.for_key().sessions()
    session = store.get(at.session_state[SESSION_KEY])
    assert session is not None
    return store.cookie_value(session)


def signed_out(at: AppTest) -> bool:
    return "sign_in_user" in at.session_state and not at.chat_input


def policies_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``policies`` command, in its own process, as an administrator would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    return subprocess.run(
        [sys.executable, "-m", "policies.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )


def test_anonymous_sees_only_sign_in(use_config: UIEnv) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    no_exceptions(at)
    assert at.text_input(key="sign_in_user") is not None
    assert not at.chat_input


def test_wrong_password_is_refused_generically(use_config: UIEnv) -> None:
    at = sign_in("alice", "wrong-password-123")
    assert "invalid user name or password" in texts(at)
    assert not at.chat_input


def test_employee_signs_in_and_sees_chat_only(use_config: UIEnv) -> None:
    at = sign_in("alice")
    assert at.chat_input, texts(at)
    links = [str(p.proto.label) for p in at.get("page_link")]
    assert "Chat" in links and "Sources" not in links and "Audit log" not in links
    # The page hands the browser a one-time claim code for its HttpOnly cookie.
    scripts = [str(h.proto.body) for h in at.get("html") if "<script>" in str(h.proto.body)]
    assert any("enclave-api/session" in s and "claim=" in s for s in scripts), scripts


def test_a_deep_link_survives_signing_in(use_config: UIEnv) -> None:
    """/audit before signing in shows the sign-in form there, and the audit page after."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("views/audit.py")
    at.run()
    no_exceptions(at)
    assert at.text_input(key="sign_in_user") is not None
    assert "Audit log" not in [str(t.value) for t in at.title]
    at = sign_in("cora", at=at)
    assert "Audit log" in [str(t.value) for t in at.title], texts(at)


def test_the_cookie_signs_in_a_new_tab_until_sign_out(
    use_config: UIEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sign_in("cora")
    cookie = cookie_of(first)
    monkeypatch.setattr("ui.auth._cookie", lambda: cookie)
    tab = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    tab.switch_page("views/audit.py")
    tab.run()
    no_exceptions(tab)
    assert "Audit log" in [str(t.value) for t in tab.title], texts(tab)
    # A tampered cookie signs in nobody.
    monkeypatch.setattr("ui.auth._cookie", lambda: cookie[:-2] + "00")
    assert signed_out(AppTest.from_file(str(APP), default_timeout=TIMEOUT).run())
    # Sign-out revokes the session on the server: the cookie is worthless from then on.
    monkeypatch.setattr("ui.auth._cookie", lambda: cookie)
    button(tab, "Sign out").click()
    tab.run()
    no_exceptions(tab)
    assert signed_out(tab)
    assert any("session/end" in str(h.proto.body) for h in tab.get("html"))
    assert signed_out(AppTest.from_file(str(APP), default_timeout=TIMEOUT).run())
    first.run()
    assert signed_out(first)  # the same session, in its first tab, ended too


@pytest.mark.parametrize(
    ("page", "role"),
    [("sources", "admin"), ("models", "admin"), ("audit", "compliance"), ("reports", "compliance")],
)
def test_pages_refuse_users_without_the_role(use_config: UIEnv, page: str, role: str) -> None:
    at = open_page(sign_in("alice"), page)
    shown = texts(at)
    assert f"does not have the '{role}' role" in shown
    assert not at.dataframe  # no data leaks past the refusal


def test_sign_out(use_config: UIEnv) -> None:
    at = sign_in("alice")
    button(at, "Sign out").click()
    at.run()
    no_exceptions(at)
    assert signed_out(at)


@pytest.mark.parametrize("action", ["disable", "reset-password"])
def test_disable_or_password_reset_ends_a_signed_in_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """Issue 14, item 7: ``policies users disable`` / ``reset-password`` from a shell end the
    session at its next request, and the cookie cannot bring it back (not even after the
    account is enabled again)."""
    env = make_env(tmp_path, sync=False)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    at = sign_in("alice")
    assert at.chat_input
    cookie = cookie_of(at)
    if action == "disable":
        policies_cli(env.config, "users", "disable", "alice")
    else:
        policies_cli(env.config, "users", "reset-password", "alice", "--password", PASSWORD + "2")
    at.run()
    no_exceptions(at)
    assert signed_out(at), texts(at)
    if action == "disable":
        policies_cli(env.config, "users", "enable", "alice")
    monkeypatch.setattr("ui.auth._cookie", lambda: cookie)
    assert signed_out(AppTest.from_file(str(APP), default_timeout=TIMEOUT).run())


def test_role_removed_in_directory_applies_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, sync=False)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    at = open_page(sign_in("adam"), "models")
    assert "Roles allowed to ask" in texts(at)
    directory = env.root / "directory.yaml"
    text = directory.read_text().replace("roles: [employee, admin]", "roles: [employee]")
    directory.write_text(text)
    os.utime(directory, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    at.run()
    assert "does not have the 'admin' role" in texts(at)
    assert not at.dataframe
    directory.write_text(
        text.replace(
            "adam: {groups: [staff, it], roles: [employee]}",
            "adam: {groups: [staff, it], disabled: true}",
        )
    )
    os.utime(directory, ns=(time.time_ns() + 2 * 10**9, time.time_ns() + 2 * 10**9))
    at.run()
    no_exceptions(at)
    assert at.text_input(key="sign_in_user") is not None  # signed out
