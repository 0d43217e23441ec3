"""HTTP routes the UI server adds beside Streamlit's (:mod:`ui.server`).

- ``POST /enclave-api/session``: exchange a one-time claim code for the HttpOnly session
  cookie (:mod:`ui.sessions`);
- ``POST /enclave-api/session/end``: revoke the cookie's session and clear the cookie;
- ``GET /enclave-api/file?chunk=ID[&download=1]``: the file behind a citation, for a reader of
  it only (:mod:`ui.cited_files`); PDFs open inline so ``#page=N`` works, everything else is
  an attachment.

Plus a middleware that puts a Content-Security-Policy on every response: the page may load
and connect to its own origin only (a second line behind the inert rendering of
:mod:`ui.render`). POST routes need the ``X-Enclave: 1`` header, which a cross-site form
cannot send.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AccessDeniedError
from policies.identity import Principal
from ui import runtime
from ui.sessions import COOKIE, session_principal

log = logging.getLogger("enclave.ui.web")

PREFIX = "/enclave-api"
CSP = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "font-src 'self' data:; "
    "media-src 'self' blob: data:; "
    "connect-src 'self'; "
    "frame-src 'self' blob: data:; "
    "worker-src 'self' blob:; "
    "object-src 'self'; "
    "base-uri 'self'; "
    "form-action 'self'; "
    "frame-ancestors 'self'"
)


def api_path(name: str) -> str:
    """Where the browser reaches route ``name`` (Streamlit's base URL path included)."""
    return f"{_base()}{PREFIX}/{name}"


def _base() -> str:
    from streamlit import config

    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def _xhr_only(request: Request) -> Response | None:
    if request.headers.get("x-enclave") != "1":
        return Response("missing X-Enclave header", status_code=400)
    return None


async def claim_session(request: Request) -> Response:
    refused = _xhr_only(request)
    if refused is not None:
        return refused
    form = await request.form()
    code = str(form.get("claim") or "")
    resources = runtime.for_key()
    value = await run_in_threadpool(resources.sessions().claim, code)
    if value is None:
        return Response("unknown or expired claim", status_code=403)
    response = Response(status_code=204)
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(resources.settings.ui.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def end_session(request: Request) -> Response:
    refused = _xhr_only(request)
    if refused is not None:
        return refused
    store = runtime.for_key().sessions()
    sid = store.session_id_of(request.cookies.get(COOKIE))
    if sid:
        await run_in_threadpool(store.revoke, sid, "signed_out")
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def principal_of_request(request: Request) -> Principal | None:
    """The principal the request's session cookie stands for now (all checks of a rerun)."""
    resources = runtime.for_key()
    store = resources.sessions()
    session = store.get(store.session_id_of(request.cookies.get(COOKIE)))
    if session is None:
        return None
    return session_principal(resources.policies(), store, session)


def _serve_file(request: Request) -> Response:
    from ui.cited_files import open_cited

    principal = principal_of_request(request)
    if principal is None:
        return Response("sign in first", status_code=401, media_type="text/plain")
    chunk_id = request.query_params.get("chunk", "")
    try:
        found = open_cited(runtime.for_key(), principal, chunk_id)
    except AccessDeniedError as exc:
        return Response(exc.message, status_code=403, media_type="text/plain")
    inline = found.is_pdf and request.query_params.get("download") != "1"
    disposition = "inline" if inline else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(found.name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    log.info("file served: %s %s:%s", principal.user_id, found.source, found.path)
    return Response(found.data, media_type=found.media_type, headers=headers)


async def cited_file(request: Request) -> Response:
    return await run_in_threadpool(_serve_file, request)


def routes() -> list[Route]:
    base = _base()
    return [
        Route(f"{base}{PREFIX}/session", claim_session, methods=["POST"]),
        Route(f"{base}{PREFIX}/session/end", end_session, methods=["POST"]),
        Route(f"{base}{PREFIX}/file", cited_file, methods=["GET"]),
    ]


class SecurityHeaders:
    """ASGI middleware: a Content-Security-Policy and nosniff on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers") or [])
                names = {h[0].lower() for h in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
