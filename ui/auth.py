"""Sign-in and the signed-in user of each request: local accounts or OIDC through ``st.login``.

Every script run (every click) answers "who is this, now?" from the server side:

1. the session: the id kept in ``st.session_state`` for this tab, else the one the browser's
   ``enclave_session`` cookie names (a refresh, a deep link, a second tab) — see
   :mod:`ui.sessions` for the cookie;
2. :func:`ui.sessions.session_principal`: the account must be unchanged and enabled, and the
   groups and roles are the directory's (or, with OIDC, the token's) as they are now.

A session that fails either step is revoked and the user sees the sign-in form on the page they
asked for; after signing in they land on that same page. With OIDC, Streamlit's own identity
cookie says who signed in at the identity provider; a revoked or expired Enclave session then
also signs out of Streamlit (``st.logout``), so the user signs in at the provider again.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.errors import AuthenticationError, EnclaveError
from policies.identity import Principal
from ui import runtime
from ui.errors import log_error
from ui.sessions import COOKIE, Session, session_principal

SESSION_KEY = "enclave_session_id"
CLAIM_KEY = "enclave_session_claim"
CLEAR_KEY = "enclave_session_clear"
_PRINCIPAL_KEY = "enclave_principal"


def current() -> Principal | None:
    """Check the session and the account now; remember the result for this script run.

    Called once per run by :func:`ui.shell.main`, before any page; pages read the result
    with :func:`signed_in`."""
    oidc = runtime.settings().ui.auth == "oidc"
    principal = _oidc_current() if oidc else _local_current()
    st.session_state[_PRINCIPAL_KEY] = principal
    return principal


def signed_in() -> Principal | None:
    """The principal :func:`current` found in this run."""
    value = st.session_state.get(_PRINCIPAL_KEY)
    return value if isinstance(value, Principal) else None


def _cookie() -> str | None:
    """The session cookie the browser sent when it connected (None in tests / no browser)."""
    try:
        return st.context.cookies.get(COOKIE)
    except Exception:  # no client context
        return None


def _session() -> tuple[Session | None, bool]:
    """(the live session of this tab or its cookie, whether a known session had ended)."""
    store = runtime.sessions()
    ended = False
    sid = st.session_state.get(SESSION_KEY)
    if sid:
        session = store.get(sid)
        if session is not None:
            return session, False
        st.session_state.pop(SESSION_KEY, None)
        ended = True
    cookie_sid = store.session_id_of(_cookie())
    if cookie_sid and cookie_sid != sid:
        session = store.get(cookie_sid)
        if session is not None:
            st.session_state[SESSION_KEY] = session.id
            return session, False
        ended = True
    elif cookie_sid:
        ended = True
    return None, ended


def _local_current() -> Principal | None:
    session, _ = _session()
    if session is None:
        return None
    principal = session_principal(runtime.policies(), runtime.sessions(), session)
    if principal is None:
        _forget_tab()
    return principal


def _oidc_current() -> Principal | None:
    if not st.user.is_logged_in:
        _forget_tab()
        return None
    claims: dict[str, Any] = dict(st.user.to_dict())
    # The policy service maps the claims (with an LDAP directory, the groups are the
    # directory's, as for local sign-in and the CLI's --user).
    claimed = runtime.policies().principal_for_claims(claims)
    store = runtime.sessions()
    session, ended = _session()
    if session is not None and session.user_id != claimed.user_id:
        store.revoke(session.id, "identity_changed")
        session, ended = None, True
    if session is None:
        if ended:  # revoked, expired or disabled: sign in at the identity provider again
            _forget_tab()
            st.logout()
            return None
        session = _start_session(claimed.user_id, "oidc", claimed=claimed).session
        policies = runtime.policies()
        policies.audit.append(
            "login",
            principal=claimed,
            policy_version=policies.version,
            details={"ok": True, "method": "oidc"},
        )
    elif session.claimed != claimed:
        store.update_claimed(session.id, claimed)
        session = store.get(session.id)
        if session is None:
            _forget_tab()
            return None
    principal = session_principal(runtime.policies(), store, session)
    if principal is None:
        _forget_tab()
        st.logout()
    return principal


def _start_session(user_id: str, method: str, **kwargs: Any) -> Any:
    new = runtime.sessions().create(user_id, method, **kwargs)
    st.session_state[SESSION_KEY] = new.session.id
    st.session_state[CLAIM_KEY] = new.claim_code
    return new


def _forget_tab() -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(_PRINCIPAL_KEY, None)
    for key in [k for k in st.session_state if str(k).startswith("chat_")]:
        del st.session_state[key]


def sign_out() -> None:
    """End this session on the server, forget it in this tab, and clear the cookie."""
    sid = st.session_state.get(SESSION_KEY)
    if sid:
        runtime.sessions().revoke(str(sid), "signed_out")
    cookie_sid = runtime.sessions().session_id_of(_cookie())
    if cookie_sid:
        runtime.sessions().revoke(cookie_sid, "signed_out")
    _forget_tab()
    st.session_state[CLEAR_KEY] = True
    if runtime.settings().ui.auth == "oidc":
        st.logout()


def sign_in_form() -> None:
    """The sign-in form, shown on whichever page an anonymous visitor opened."""
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
    policies = runtime.policies()
    try:
        principal = policies.authenticate(username, password)
    except AuthenticationError as exc:
        st.error(exc.message)
        return
    except EnclaveError as exc:
        error_id = log_error(exc, "sign-in")
        st.error(f"Sign-in is not possible right now: {exc.message} (error id {error_id})")
        return
    stamp = policies.accounts.credential_stamp(principal.user_id)
    _start_session(principal.user_id, "local", stamp=stamp)
    st.session_state.pop(_PRINCIPAL_KEY, None)
    st.rerun()
