"""Sign-in and role checks through the real app (AppTest, in-process)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.ui.apptest_helpers import APP, TIMEOUT, no_exceptions, open_page, sign_in, texts
from tests.ui.conftest import UIEnv, make_env

pytestmark = pytest.mark.slow


def test_anonymous_sees_only_sign_in(use_config: UIEnv) -> None:
    from streamlit.testing.v1 import AppTest

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
    next(b for b in at.button if b.label == "Sign out").click()
    at.run()
    no_exceptions(at)
    assert not at.chat_input
    assert at.text_input(key="sign_in_user") is not None


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
