"""Driving the real app in-process with streamlit.testing.v1.AppTest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import PASSWORD

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
TIMEOUT = 180
_TAG = re.compile(r"<[^>]+>")


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def button(at: AppTest, label: str) -> Any:
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def html_bodies(at: AppTest) -> list[str]:
    """The HTML of every ``st.html`` element (answers, passages), style blocks left out."""
    return [str(h.proto.body) for h in at.get("html") if "<style>" not in str(h.proto.body)]


def html_text(at: AppTest) -> str:
    """The visible text of every ``st.html`` element, tags removed."""
    import html

    return "\n".join(html.unescape(_TAG.sub("", body)) for body in html_bodies(at))


def texts(at: AppTest) -> str:
    """Every markdown/caption/alert/html text on the page, joined."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "success", "info", "title"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts.append(html_text(at))
    return "\n".join(parts)


def popover_labels(at: AppTest) -> list[str]:
    """Labels of every popover (citation chips, Copy, Edit, Rename), sidebar included."""
    found = []
    for root in (at.main, at.sidebar):
        for node in root:
            if getattr(node, "type", None) == "popover":
                found.append(str(node.proto.popover.label))
    return found


def sign_in(user: str, password: str = PASSWORD, *, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(str(APP), default_timeout=TIMEOUT)
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


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question)
    at.run()
    no_exceptions(at)
    return at
