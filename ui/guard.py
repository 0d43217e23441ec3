"""Server-side role checks: every page calls :func:`require` before it touches any data."""

from __future__ import annotations

import streamlit as st

from policies.identity import Principal
from ui import auth
from ui.render import literal

ROLE_NAMES = {"admin": "administrators", "compliance": "the compliance team"}


def require(role: str | None = None) -> Principal:
    """The signed-in principal holding ``role``; otherwise stop the page after showing the
    sign-in form (anonymous: the page is shown once they have signed in) or a refusal."""
    principal = auth.signed_in()
    if principal is None:
        auth.sign_in_form()
        st.stop()
    if role is not None and not principal.has_role(role):
        st.error(
            f"This page is only for {ROLE_NAMES.get(role, 'the ' + role + ' role')}. "
            f"You are signed in as {literal(principal.user_id)}, who does not have the "
            f"'{role}' role. "
            "Ask your administrator if you need access.",
            icon=":material/block:",
        )
        st.stop()
    return principal
