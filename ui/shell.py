"""The frame around every page: the session check, navigation by role, sign-out.

Every page is routable whether or not the visitor is signed in, so a deep link (``/audit``,
``/sources``) always reaches its page: an anonymous visitor gets the sign-in form there and,
once signed in, stays on that page; a signed-in user without the role gets the page's own
refusal. The menu lists only what the user's roles open.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from policies.identity import ADMIN, COMPLIANCE, Principal
from ui import auth, background
from ui.errors import configure_logging, error_boundary
from ui.render import STYLE, literal
from ui.webapi import api_path

VIEWS = Path(__file__).parent / "views"
FAVICON = Path(__file__).parent / "assets" / "favicon.png"

# (file, title, icon, role needed to see it in the menu; the page itself re-checks)
PAGES: list[tuple[str, str, str, str | None]] = [
    ("chat.py", "Chat", ":material/chat:", None),
    ("sources.py", "Sources", ":material/folder_shared:", ADMIN),
    ("models.py", "Models and quotas", ":material/memory:", ADMIN),
    ("audit.py", "Audit log", ":material/fact_check:", COMPLIANCE),
    ("reports.py", "Usage reports", ":material/monitoring:", COMPLIANCE),
]


def main() -> None:
    # A local file: an icon name (":material/lock:") makes the browser fetch it from a CDN.
    st.set_page_config(page_title="Enclave", page_icon=str(FAVICON), layout="wide")
    configure_logging()
    with error_boundary("app"):
        background.start_once()
        principal = auth.current()
        _cookie_scripts()
        st.html(STYLE)
        pages = {
            name: st.Page(str(VIEWS / name), title=title, icon=icon, default=name == "chat.py")
            for name, title, icon, _ in PAGES
        }
        nav = st.navigation(list(pages.values()), position="hidden")
        if principal is not None:
            _sidebar(principal, pages)
        nav.run()


def _cookie_scripts() -> None:
    """Hand a fresh claim code to the browser (it asks the server for the HttpOnly cookie),
    or ask the server to clear the cookie after sign-out. Our own script, no user data."""
    claim = st.session_state.pop(auth.CLAIM_KEY, None)
    if claim:
        body = "claim=" + str(claim)
        _post(api_path("session"), body)
    if st.session_state.pop(auth.CLEAR_KEY, None):
        _post(api_path("session/end"), "")


def _post(url: str, body: str) -> None:
    options = (
        "{method: 'POST', credentials: 'same-origin', headers: "
        "{'Content-Type': 'application/x-www-form-urlencoded', 'X-Enclave': '1'}, "
        f"body: {json.dumps(body)}}}"
    )
    script = f"<script>fetch({json.dumps(url)}, {options})</script>"
    st.html(script, unsafe_allow_javascript=True)


def _sidebar(principal: Principal, pages: dict[str, StreamlitPage]) -> None:
    with st.sidebar:
        st.markdown("**Enclave**")
        for name, _title, _icon, role in PAGES:
            if role is None or principal.has_role(role):
                st.page_link(pages[name])
        st.divider()
        roles = ", ".join(sorted(principal.roles))
        st.caption(f"Signed in as **{literal(principal.user_id)}** ({literal(roles)})")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            auth.sign_out()
            st.rerun()
