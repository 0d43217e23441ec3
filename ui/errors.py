"""No traceback ever reaches a user: errors are logged with an id the user can quote.

:func:`error_boundary` wraps each page. Enclave errors (stable dotted codes, messages written for
people) are shown with their message; anything else becomes a generic notice. Both carry an
error id that also appears in the server log next to the full traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.errors import EnclaveError

log = logging.getLogger("enclave.ui")


def configure_logging() -> None:
    """Send ``enclave.*`` records (error ids with tracebacks, syncs, warm-up) to stderr."""
    root = logging.getLogger("enclave")
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def new_error_id() -> str:
    return uuid.uuid4().hex[:12]


def log_error(exc: BaseException, where: str) -> str:
    """Log ``exc`` with its traceback under a fresh error id and return the id."""
    error_id = new_error_id()
    code = exc.code if isinstance(exc, EnclaveError) else type(exc).__name__
    log.error("error id %s in %s (%s)", error_id, where, code, exc_info=exc)
    return error_id


def user_message(exc: BaseException, error_id: str) -> str:
    """What the user sees: the Enclave message, or a generic line; always the error id."""
    if isinstance(exc, EnclaveError):
        return f"{exc.message} (code {exc.code}; error id {error_id})"
    return (
        "Something went wrong on our side. Please try again; if it keeps happening, give your "
        f"administrator this error id: {error_id}"
    )


def show_error(exc: BaseException, where: str) -> str:
    error_id = log_error(exc, where)
    st.error(user_message(exc, error_id), icon=":material/error:")
    return error_id


@contextmanager
def error_boundary(where: str) -> Iterator[None]:
    """Catch every ``Exception`` (Streamlit's rerun/stop signals are BaseExceptions and pass)."""
    try:
        yield
    except Exception as exc:
        show_error(exc, where)
