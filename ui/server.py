"""The UI server: Streamlit's app (``ui/app.py``) plus Enclave's HTTP routes, as one ASGI app.

``enclave run`` starts ``streamlit run ui/server.py``; Streamlit finds ``app`` below and serves
it with uvicorn. The routes (:mod:`ui.webapi`) set and clear the HttpOnly session cookie and
serve cited files to their readers; the middleware adds a Content-Security-Policy that keeps
the page on its own origin.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `streamlit run ui/server.py` puts only ui/ on the path
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from ui.webapi import SecurityHeaders, routes  # noqa: E402

app = st.App(
    Path(__file__).with_name("app.py"),
    routes=routes(),
    middleware=[Middleware(SecurityHeaders)],
)
