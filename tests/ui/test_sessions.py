"""Sign-in sessions: signed, expiring, server-revocable; revalidated against the account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core.db import make_engine
from core.settings import load_settings
from policies.identity import Principal
from policies.service import PolicyService
from ui.sessions import SessionRow, SessionStore, session_principal

DIRECTORY = """
users:
  alice: {groups: [staff], roles: [employee]}
  olga: {groups: [staff], roles: [employee]}
"""


@pytest.fixture
def service(tmp_path: Path) -> PolicyService:
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    settings = load_settings(
        None, data_dir=tmp_path / "data", directory=tmp_path / "directory.yaml"
    )
    svc = PolicyService.from_settings(settings)
    svc.accounts.create("alice", "correct-horse-battery")
    return svc


@pytest.fixture
def store(tmp_path: Path, service: PolicyService) -> SessionStore:
    engine = make_engine(service.settings.db_url)
    made = SessionStore(engine, b"k" * 32, max_age=timedelta(hours=1), idle=timedelta(minutes=5))
    made.migrate()
    return made


def _age(store: SessionStore, session_id: str, **values: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(SessionRow).where(SessionRow.id == session_id).values(**values))


def test_cookie_is_signed_and_carries_its_expiry(store: SessionStore) -> None:
    new = store.create("alice", "local", stamp="s1")
    cookie = store.claim(new.claim_code)
    assert cookie is not None and cookie.count(".") == 2
    assert store.session_id_of(cookie) == new.session.id
    sid, expires, mac = cookie.split(".")
    assert store.session_id_of(f"{sid}.{int(expires) + 3600}.{mac}") is None  # expiry forged
    forged = sid[:-1] + ("1" if sid[-1] == "0" else "0")  # another id, same length
    assert store.session_id_of(f"{forged}.{expires}.{mac}") is None  # id forged
    assert store.session_id_of(f"{sid}.{expires}.{'0' * len(mac)}") is None
    other = SessionStore(store.engine, b"x" * 32, max_age=store.max_age, idle=store.idle)
    assert other.session_id_of(cookie) is None  # another key cannot read it
    later = datetime.now(UTC) + timedelta(hours=2)
    assert store.session_id_of(cookie, now=later) is None
    for junk in ("", "a.b", "a.b.c.d", f"{sid}.soon.{mac}"):
        assert store.session_id_of(junk) is None


def test_claim_codes_work_once_and_briefly(store: SessionStore) -> None:
    new = store.create("alice", "local")
    assert store.claim("not-a-code") is None
    assert store.claim(new.claim_code) is not None
    assert store.claim(new.claim_code) is None  # one time only
    stale = store.create("alice", "local")
    _age(store, stale.session.id, claim_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert store.claim(stale.claim_code) is None


def test_sessions_expire_idle_and_revoke(store: SessionStore) -> None:
    a = store.create("alice", "local").session
    assert store.get(a.id) is not None
    _age(store, a.id, last_seen_at=datetime.now(UTC) - timedelta(minutes=6))
    assert store.get(a.id) is None  # idle too long
    b = store.create("alice", "local").session
    _age(store, b.id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert store.get(b.id) is None  # past its lifetime
    c = store.create("alice", "local").session
    d = store.create("alice", "local").session
    store.revoke(c.id, "signed_out")
    assert store.get(c.id) is None and store.get(d.id) is not None
    assert store.revoke_user("alice", "admin") == 1
    assert store.get(d.id) is None
    assert store.get("no-such-session") is None and store.get(None) is None


def test_the_account_is_checked_on_every_request(
    service: PolicyService, store: SessionStore
) -> None:
    stamp = service.accounts.credential_stamp("alice")
    session = store.create("alice", "local", stamp=stamp).session
    assert session_principal(service, store, session) == Principal(
        "alice", frozenset({"staff"}), frozenset({"employee"})
    )
    service.accounts.reset_password("alice", "another-long-password")
    assert session_principal(service, store, session) is None
    assert store.get(session.id) is None  # revoked, not just refused once

    stamp = service.accounts.credential_stamp("alice")
    session = store.create("alice", "local", stamp=stamp).session
    service.accounts.disable("alice")
    assert service.accounts.credential_stamp("alice") is None
    assert session_principal(service, store, session) is None
    service.accounts.enable("alice")
    assert session_principal(service, store, session) is None  # enabling does not revive it


def test_directory_changes_apply_to_live_sessions(
    service: PolicyService, store: SessionStore, tmp_path: Path
) -> None:
    import os
    import time

    stamp = service.accounts.credential_stamp("alice")
    session = store.create("alice", "local", stamp=stamp).session
    directory = tmp_path / "directory.yaml"
    directory.write_text(DIRECTORY.replace("alice: {groups: [staff]", "alice: {groups: [hr]"))
    os.utime(directory, ns=(time.time_ns() + 10**9,) * 2)
    principal = session_principal(service, store, session)
    assert principal is not None and principal.groups == frozenset({"hr"})
    directory.write_text(
        DIRECTORY.replace("roles: [employee]}", "roles: [employee], disabled: true}", 1)
    )
    os.utime(directory, ns=(time.time_ns() + 2 * 10**9,) * 2)
    assert session_principal(service, store, session) is None


def test_oidc_sessions_keep_the_token_groups(service: PolicyService, store: SessionStore) -> None:
    claimed = Principal("olga", frozenset({"finance"}), frozenset({"employee", "compliance"}))
    session = store.create("olga", "oidc", claimed=claimed).session
    assert session.claimed == claimed
    assert session_principal(service, store, session) == claimed
    service.accounts.create("olga", "a-local-password-too")
    service.accounts.disable("olga")  # an admin blocks the user locally
    assert session_principal(service, store, session) is None


def test_replicas_sharing_the_key_file_accept_each_others_cookies(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "session.key"
    one = load_settings(None, data_dir=tmp_path / "a", ui={"session_key_file": key})
    two = load_settings(
        None,
        data_dir=tmp_path / "b",
        database_url=one.db_url,
        ui={"session_key_file": key},
    )
    first = SessionStore.from_settings(one)
    cookie = first.claim(first.create("alice", "local").claim_code)
    assert key.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert SessionStore.from_settings(two).session_id_of(cookie) is not None
    other = load_settings(None, data_dir=tmp_path / "c", database_url=one.db_url)
    assert SessionStore.from_settings(other).session_id_of(cookie) is None
