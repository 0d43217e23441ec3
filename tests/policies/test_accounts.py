"""Local accounts on a real SQLite database: argon2 hashes, lockout, no user enumeration."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.db import session_scope
from core.errors import AccountError, AuthenticationError, LoginFailed
from core.settings import Settings, load_settings
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


# Issue 14, item 6 --------------------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, counting verifications (the work an answer costs)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return super().verify(hash, password)


def test_every_refusal_costs_one_argon2_verification(settings: Settings) -> None:
    """An unknown name, a wrong password, a disabled and a locked account all spend the same
    argon2 work, so the time to answer does not tell them apart."""
    svc = PolicyService.from_settings(settings)
    hasher = CountingHasher()
    accounts = LocalAccounts(svc.engine, svc.directory, lockout_attempts=2, hasher=hasher)
    accounts.create("alice", "correct horse battery")
    accounts.create("carol", "correct horse battery")
    accounts.disable("carol")
    for _ in range(2):
        with pytest.raises(LoginFailed):
            accounts.authenticate("alice", "wrong password!")
    cases = [
        ("nobody", "whatever1234", "unknown"),
        ("alice", "correct horse battery", "locked"),
        ("alice", "wrong password!", "locked"),
        ("carol", "correct horse battery", "disabled"),
    ]
    for name, password, detail in cases:
        before = hasher.verifications
        with pytest.raises(LoginFailed) as info:
            accounts.authenticate(name, password)
        assert info.value.detail == detail
        assert hasher.verifications - before == 1, f"{detail}: {hasher.verifications - before}"


def test_locked_account_answers_as_slowly_as_an_unknown_one(settings: Settings) -> None:
    svc = PolicyService.from_settings(settings)
    accounts = LocalAccounts(svc.engine, svc.directory, lockout_attempts=1)  # real argon2id
    accounts.create("bob", "correct horse battery")
    with pytest.raises(LoginFailed):
        accounts.authenticate("bob", "wrong password!")

    def timed(name: str) -> float:
        t0 = time.perf_counter()
        with pytest.raises(LoginFailed):
            accounts.authenticate(name, "wrong password!")
        return time.perf_counter() - t0

    timed("nobody")  # the unknown path's first call prepares its dummy hash
    locked = statistics.median(timed("bob") for _ in range(5))
    unknown = statistics.median(timed("nobody") for _ in range(5))
    assert locked > 0.4 * unknown, (locked, unknown)


def test_parallel_wrong_passwords_lock_the_account(db_config: Path) -> None:
    """16 wrong passwords at once must count as 16 (no lost updates): the account locks."""
    svc = PolicyService.from_settings(load_settings(db_config))
    slow = PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1)
    accounts = LocalAccounts(svc.engine, svc.directory, lockout_attempts=5, hasher=slow)
    accounts.create("alice", "correct horse battery")
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def attempt() -> None:
        barrier.wait()
        try:
            accounts.authenticate("alice", "wrong password!")
        except LoginFailed:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [info] = accounts.list()
    assert info.locked_until is not None, info
    with pytest.raises(LoginFailed) as locked:
        accounts.authenticate("alice", "correct horse battery")
    assert locked.value.detail == "locked"
