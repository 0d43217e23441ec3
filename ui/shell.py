"""The frame around every page: sign-in gate, navigation by role, sign-out."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from policies.identity import ADMIN, COMPLIANCE, Principal
from ui import auth, background
from ui.errors import configure_logging, error_boundary

VIEWS = Path(__file__).parent / "views"

# (file, title, icon, role needed to see it in the menu; the page itself re-checks)
PAGES: list[tuple[str, str, str, str | None]] = [
    ("chat.py", "Chat", ":material/chat:", None),
    ("sources.py", "Sources", ":material/folder_shared:", ADMIN),
    ("models.py", "Models and quotas", ":material/memory:", ADMIN),
    ("audit.py", "Audit log", ":material/fact_check:", COMPLIANCE),
    ("reports.py", "Usage reports", ":material/monitoring:", COMPLIANCE),
]


def main() -> None:
    st.set_page_config(page_title="Enclave", page_icon=":material/lock:", layout="wide")
    configure_logging()
    with error_boundary("app"):
        background.start_once()
        principal = auth.current()
        if principal is None:
            st.navigation([st.Page(auth.sign_in_page, title="Sign in")], position="hidden").run()
            return
        # Every page is routable (so a direct URL gets the page's own refusal rather than a
        # silent redirect); the menu lists only what the user's roles open.
        pages = {
            name: st.Page(str(VIEWS / name), title=title, icon=icon, default=name == "chat.py")
            for name, title, icon, _ in PAGES
        }
        nav = st.navigation(list(pages.values()), position="hidden")
        _sidebar(principal, pages)
        nav.run()


def _sidebar(principal: Principal, pages: dict[str, StreamlitPage]) -> None:
    with st.sidebar:
        st.markdown("**Enclave**")
        for name, _title, _icon, role in PAGES:
            if role is None or principal.has_role(role):
                st.page_link(pages[name])
        st.divider()
        roles = ", ".join(sorted(principal.roles))
        st.caption(f"Signed in as **{principal.user_id}** ({roles})")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            auth.sign_out()
            st.rerun()
