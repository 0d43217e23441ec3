"""The UI server's own HTTP routes, over real HTTP requests (Starlette's test client): the
HttpOnly session cookie, the cited-file route for readers only, the security headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from ingest.model import make_doc_id, make_point_id
from tests.ui.conftest import UIEnv
from ui import runtime
from ui.sessions import COOKIE
from ui.webapi import CSP, SecurityHeaders, routes

pytestmark = pytest.mark.slow
XHR = {"X-Enclave": "1"}


def chunk(rel_path: str) -> str:
    return make_point_id(make_doc_id("docs", rel_path), 0)


@pytest.fixture
def client(use_config: UIEnv) -> Iterator[TestClient]:
    app = Starlette(routes=routes(), middleware=[Middleware(SecurityHeaders)])
    with TestClient(app, base_url="http://127.0.0.1") as made:
        yield made


def signed_in(client: TestClient, user: str) -> None:
    resources = runtime.for_key()
    stamp = resources.policies().accounts.credential_stamp(user)
    new = resources.sessions().create(user, "local", stamp=stamp)
    response = client.post("/enclave-api/session", data={"claim": new.claim_code}, headers=XHR)
    assert response.status_code == 204, response.text
    header = response.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=")
    lowered = header.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered


def test_claim_sets_an_httponly_cookie_once(client: TestClient) -> None:
    new = runtime.for_key().sessions().create("alice", "local")
    assert client.post("/enclave-api/session", data={"claim": new.claim_code}).status_code == 400
    ok = client.post("/enclave-api/session", data={"claim": new.claim_code}, headers=XHR)
    assert ok.status_code == 204 and COOKIE in ok.cookies
    again = client.post("/enclave-api/session", data={"claim": new.claim_code}, headers=XHR)
    assert again.status_code == 403


def test_cited_file_only_for_its_readers(client: TestClient, use_config: UIEnv) -> None:
    assert (
        client.get("/enclave-api/file", params={"chunk": chunk("handbook/expenses.md")}).status_code
        == 401
    )
    signed_in(client, "alice")
    ok = client.get("/enclave-api/file", params={"chunk": chunk("handbook/expenses.md")})
    assert ok.status_code == 200
    assert ok.content == (use_config.docs / "handbook/expenses.md").read_bytes()
    assert ok.headers["content-disposition"].startswith("attachment;")  # only PDFs open inline
    assert ok.headers["x-content-type-options"] == "nosniff"
    hidden = client.get("/enclave-api/file", params={"chunk": chunk("hr/salary-bands.md")})
    assert hidden.status_code == 403 and b"Band" not in hidden.content
    # The account is checked on every request, as on every rerun of a page.
    runtime.for_key().policies().accounts.disable("alice")
    try:
        gone = client.get("/enclave-api/file", params={"chunk": chunk("handbook/expenses.md")})
        assert gone.status_code == 401
    finally:
        runtime.for_key().policies().accounts.enable("alice")


def test_ending_the_session_clears_the_cookie_and_revokes_it(client: TestClient) -> None:
    signed_in(client, "hana")
    cookie = client.cookies[COOKIE]
    response = client.post("/enclave-api/session/end", headers=XHR)
    assert response.status_code == 204
    assert (
        f'{COOKIE}=""' in response.headers["set-cookie"]
        or "max-age=0" in response.headers["set-cookie"].lower()
    )
    store = runtime.for_key().sessions()
    assert store.get(store.session_id_of(cookie)) is None
    client.cookies.set(COOKIE, cookie)
    assert (
        client.get("/enclave-api/file", params={"chunk": chunk("handbook/expenses.md")}).status_code
        == 401
    )


def test_every_response_carries_the_content_security_policy(client: TestClient) -> None:
    response = client.get("/enclave-api/file", params={"chunk": "x"})
    assert response.headers["content-security-policy"] == CSP
    assert "img-src 'self' data: blob:" in CSP and "connect-src 'self'" in CSP
