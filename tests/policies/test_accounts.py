"""Local accounts on a real SQLite database: argon2 hashes, lockout, no user enumeration."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.db import session_scope
from core.errors import AccountError, AuthenticationError, LoginFailed
from core.settings import Settings
from policies.accounts import GENERIC_LOGIN_FAILURE, LocalAccounts
from policies.service import PolicyService
from policies.tables import Account

FAST = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture
def accounts(settings: Settings) -> LocalAccounts:
    svc = PolicyService.from_settings(settings)
    return LocalAccounts(svc.engine, svc.directory, lockout_attempts=3, hasher=FAST)


def test_create_and_authenticate_links_directory(accounts: LocalAccounts) -> None:
    accounts.create("alice", "correct horse battery")
    p = accounts.authenticate("alice", "correct horse battery")
    assert p.user_id == "alice" and p.groups == {"hr", "everyone"}
    with session_scope(accounts.engine) as s:
        stored = s.scalars(select(Account.password_hash)).one()
    assert stored.startswith("$argon2id$") and "correct" not in stored


def test_failures_are_indistinguishable(accounts: LocalAccounts) -> None:
    accounts.create("alice", "correct horse battery")
    accounts.create("dave", "correct horse battery")  # disabled in the directory
    messages = set()
    details = set()
    for name, pw in [
        ("alice", "wrong password!"),
        ("nobody", "whatever123"),
        ("dave", "correct horse battery"),
    ]:
        with pytest.raises(AuthenticationError) as info:
            accounts.authenticate(name, pw)
        assert isinstance(info.value, LoginFailed)
        messages.add(str(info.value))
        details.add(info.value.detail)
    assert messages == {f"[auth.failed] {GENERIC_LOGIN_FAILURE}"}
    assert details == {"bad_password", "unknown", "disabled"}


def test_lockout_after_n_failures_then_enable_unlocks(accounts: LocalAccounts) -> None:
    accounts.create("bob", "correct horse battery")
    for _ in range(3):
        with pytest.raises(LoginFailed):
            accounts.authenticate("bob", "bad password 1")
    with pytest.raises(LoginFailed) as info:
        accounts.authenticate("bob", "correct horse battery")
    assert info.value.detail == "locked"
    assert accounts.list()[0].locked_until is not None
    accounts.enable("bob")
    assert accounts.authenticate("bob", "correct horse battery").roles == {"employee", "admin"}


def test_disable_enable_reset(accounts: LocalAccounts) -> None:
    accounts.create("carol", "first password")
    accounts.disable("carol")
    with pytest.raises(LoginFailed) as info:
        accounts.authenticate("carol", "first password")
    assert info.value.detail == "disabled"
    accounts.enable("carol")
    accounts.reset_password("carol", "second password")
    with pytest.raises(LoginFailed):
        accounts.authenticate("carol", "first password")
    assert accounts.authenticate("carol", "second password").roles == {"compliance"}


def test_account_without_directory_entry_has_no_groups(accounts: LocalAccounts) -> None:
    accounts.create("zed", "a long password")
    p = accounts.authenticate("zed", "a long password")
    assert p.groups == frozenset()


def test_account_errors(accounts: LocalAccounts) -> None:
    accounts.create("erin", "a long password")
    with pytest.raises(AccountError) as dup:
        accounts.create("erin", "a long password")
    assert dup.value.code == "account.exists"
    with pytest.raises(AccountError) as weak:
        accounts.create("frank", "short")
    assert weak.value.code == "account.weak_password"
    with pytest.raises(AccountError) as unknown:
        accounts.disable("ghost")
    assert unknown.value.code == "account.unknown"


def test_service_authenticate_audits_logins(settings: Settings) -> None:
    svc = PolicyService.from_settings(settings)
    svc.accounts.hasher = FAST
    svc.accounts.create("alice", "correct horse battery")
    svc.authenticate("alice", "correct horse battery")
    with pytest.raises(AuthenticationError):
        svc.authenticate("alice", "nope nope nope")
    logins = svc.audit.records(event_type="login", user_id="alice")
    assert [r["details"]["ok"] for r in logins] == [True, False]
    assert logins[1]["details"]["reason"] == "bad_password"
    assert svc.audit.verify().ok
