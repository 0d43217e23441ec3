"""Driving the real app in-process with streamlit.testing.v1.AppTest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import PASSWORD

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
TIMEOUT = 180


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def button(at: AppTest, label: str) -> Any:
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def texts(at: AppTest) -> str:
    """Every markdown/caption/alert text on the page, joined."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "success", "info", "title"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def sign_in(user: str, password: str = PASSWORD) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    no_exceptions(at)
    at.text_input(key="sign_in_user").set_value(user)
    at.text_input(key="sign_in_password").set_value(password)
    button(at, "Sign in").click()
    at.run()
    no_exceptions(at)
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py")
    at.run()
    no_exceptions(at)
    return at
