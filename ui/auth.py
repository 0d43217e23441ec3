"""Sign-in: local accounts (policies) or OIDC through ``st.login``.

The signed-in user lives in the server-side session state; the browser never holds groups or
roles. For local accounts the groups and roles are re-read from the directory file on every run
(cached by the file's modification time), so a role or group removed there takes effect at the
next click, and a disabled user is signed out. With OIDC, Streamlit's identity cookie says who
the user is and :func:`policies.identity.principal_from_claims` maps the token's claims (a role
removed at the IdP is gone at the next sign-in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from core.errors import AuthenticationError, EnclaveError
from policies.directory import Directory
from policies.identity import Principal
from ui import runtime
from ui.errors import log_error

_KEY = "enclave_principal"


def current() -> Principal | None:
    """The signed-in principal, or None."""
    if runtime.settings().ui.auth == "oidc":
        return _oidc_principal()
    value = st.session_state.get(_KEY)
    if not isinstance(value, Principal):
        return None
    settings = runtime.settings()
    if settings.ldap.url:  # the directory server is the truth (cached for ldap.cache_ttl_s)
        fresh = runtime.policies().directory.get(value.user_id)
    else:
        fresh = refreshed(settings.directory, value.user_id)
    if fresh is None:
        st.session_state.pop(_KEY, None)
    return fresh


@st.cache_resource(show_spinner=False, max_entries=8)
def _directory(path: str | None, mtime_ns: int) -> Directory:
    return Directory.load(path)


def refreshed(directory_file: Path | None, user_id: str) -> Principal | None:
    """The local user's principal per the directory file as it is now; None if disabled.

    A user without a directory entry keeps no groups (as at sign-in: fail closed)."""
    mtime = directory_file.stat().st_mtime_ns if directory_file is not None else 0
    entry = _directory(str(directory_file) if directory_file else None, mtime).entry(user_id)
    if entry is None:
        return Principal(user_id=user_id, groups=frozenset())
    if entry.disabled:
        return None
    return entry.principal()


def _oidc_principal() -> Principal | None:
    if not st.user.is_logged_in:
        return None
    claims: dict[str, Any] = dict(st.user.to_dict())
    cached = st.session_state.get(_KEY)
    if isinstance(cached, Principal) and st.session_state.get(_KEY + "_claims") == claims:
        return cached
    policies = runtime.policies()
    principal = policies.principal_for_claims(claims)
    policies.audit.append(
        "login",
        principal=principal,
        policy_version=policies.version,
        details={"ok": True, "method": "oidc"},
    )
    st.session_state[_KEY] = principal
    st.session_state[_KEY + "_claims"] = claims
    return principal


def sign_out() -> None:
    st.session_state.pop(_KEY, None)
    st.session_state.pop(_KEY + "_claims", None)
    for key in [k for k in st.session_state if str(k).startswith("chat_")]:
        del st.session_state[key]
    if runtime.settings().ui.auth == "oidc":
        st.logout()


def sign_in_page() -> None:
    """The page an anonymous visitor sees."""
    st.title("Enclave")
    st.caption("Answers from your organisation's documents, with citations.")
    if runtime.settings().ui.auth == "oidc":
        st.write("Sign in with your organisation's account.")
        if st.button("Sign in with single sign-on", type="primary"):
            st.login()
        return
    with st.form("sign_in"):
        username = st.text_input("User name", key="sign_in_user")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        _local_sign_in(username.strip(), password)


def _local_sign_in(username: str, password: str) -> None:
    if not username or not password:
        st.error("Enter your user name and password.")
        return
    try:
        principal = runtime.policies().authenticate(username, password)
    except AuthenticationError as exc:
        st.error(exc.message)
        return
    except EnclaveError as exc:
        error_id = log_error(exc, "sign-in")
        st.error(f"Sign-in is not possible right now: {exc.message} (error id {error_id})")
        return
    st.session_state[_KEY] = principal
    st.rerun()
