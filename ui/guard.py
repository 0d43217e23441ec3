"""Server-side role checks: every page calls :func:`require` before it touches any data."""

from __future__ import annotations

import streamlit as st

from policies.identity import Principal
from ui import auth

ROLE_NAMES = {"admin": "administrators", "compliance": "the compliance team"}


def require(role: str | None = None) -> Principal:
    """The signed-in principal holding ``role``; otherwise show a refusal and stop the page."""
    principal = auth.current()
    if principal is None:
        st.warning("Please sign in first.")
        st.stop()
    if role is not None and not principal.has_role(role):
        st.error(
            f"This page is only for {ROLE_NAMES.get(role, 'the ' + role + ' role')}. "
            f"You are signed in as {principal.user_id}, who does not have the '{role}' role. "
            "Ask your administrator if you need access.",
            icon=":material/block:",
        )
        st.stop()
    return principal
