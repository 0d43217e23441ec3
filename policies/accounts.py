"""Local accounts (the embedded default's sign-in): argon2id password hashes in the database.

Groups and roles are not stored here: a local account links by name to its directory entry.
:meth:`LocalAccounts.authenticate` answers every failure (unknown name, wrong password, disabled,
locked out) with the same message, and spends the same argon2 work on an unknown name, so the
sign-in form does not reveal which accounts exist. After ``lockout_attempts`` consecutive
failures an account is locked for ``lockout_minutes``.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select

from core.db import session_scope
from core.errors import AccountError, LoginFailed
from policies.directory import Directory
from policies.identity import Principal

GENERIC_LOGIN_FAILURE = "invalid user name or password"


@dataclass(frozen=True)
class AccountInfo:
    name: str
    disabled: bool
    locked_until: datetime | None
    failed_attempts: int
    created_at: datetime
    in_directory: bool


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class LocalAccounts:
    def __init__(
        self,
        engine: Engine,
        directory: Directory,
        *,
        lockout_attempts: int = 5,
        lockout_minutes: float = 15.0,
        min_password_length: int = 10,
        hasher: PasswordHasher | None = None,
    ) -> None:
        from policies.tables import Account

        self._table = Account
        self.engine = engine
        self.directory = directory
        self.lockout_attempts = lockout_attempts
        self.lockout = timedelta(minutes=lockout_minutes)
        self.min_password_length = min_password_length
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    def _check_password(self, password: str) -> None:
        if len(password) < self.min_password_length:
            raise AccountError(
                f"password too short: at least {self.min_password_length} characters",
                code="account.weak_password",
            )

    def create(self, name: str, password: str) -> None:
        if not name or name.strip() != name:
            raise AccountError(
                "user name must be non-empty without surrounding spaces",
                code="account.invalid_name",
            )
        self._check_password(password)
        now = datetime.now(UTC)
        with session_scope(self.engine) as s:
            if s.get(self._table, name) is not None:
                raise AccountError(f"account '{name}' already exists", code="account.exists")
            s.add(
                self._table(
                    name=name,
                    password_hash=self.hasher.hash(password),
                    disabled=False,
                    failed_attempts=0,
                    locked_until=None,
                    created_at=now,
                    updated_at=now,
                )
            )

    def _update(self, name: str, **values: object) -> None:
        with session_scope(self.engine) as s:
            row = s.get(self._table, name)
            if row is None:
                raise AccountError(f"no account named '{name}'", code="account.unknown")
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = datetime.now(UTC)

    def disable(self, name: str) -> None:
        self._update(name, disabled=True)

    def enable(self, name: str) -> None:
        self._update(name, disabled=False, failed_attempts=0, locked_until=None)

    def reset_password(self, name: str, password: str) -> None:
        self._check_password(password)
        self._update(
            name, password_hash=self.hasher.hash(password), failed_attempts=0, locked_until=None
        )

    def list(self) -> list[AccountInfo]:
        with session_scope(self.engine) as s:
            rows = s.scalars(select(self._table).order_by(self._table.name)).all()
            return [
                AccountInfo(
                    r.name,
                    r.disabled,
                    _utc(r.locked_until),
                    r.failed_attempts,
                    _utc(r.created_at) or datetime.now(UTC),
                    self.directory.entry(r.name) is not None,
                )
                for r in rows
            ]

    def is_disabled(self, name: str) -> bool:
        """True if a local account of that name exists and is disabled."""
        with session_scope(self.engine) as s:
            row = s.get(self._table, name)
            return row is not None and bool(row.disabled)

    def credential_stamp(self, name: str) -> str | None:
        """A digest that changes whenever the password is reset or the account is disabled or
        enabled; ``None`` for an unknown or disabled account.

        A signed-in session keeps the stamp it was created with and is valid only while the
        account's current stamp is the same (``policies users disable`` / ``reset-password``
        end every session of the account at its next request)."""
        with session_scope(self.engine) as s:
            row = s.get(self._table, name)
            if row is None or row.disabled:
                return None
            updated = _utc(row.updated_at)
            material = f"{row.password_hash}\x00{updated.isoformat() if updated else ''}"
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def authenticate(self, name: str, password: str) -> Principal:
        """The user's Principal, or AuthenticationError with one generic message."""
        now = datetime.now(UTC)
        with session_scope(self.engine) as s:
            row = s.get(self._table, name)
            if row is None:
                if self._dummy_hash is None:
                    self._dummy_hash = self.hasher.hash("enclave-timing-equaliser")
                with contextlib.suppress(VerificationError):
                    self.hasher.verify(self._dummy_hash, password)
                raise LoginFailed(name, "unknown")
            locked_until = _utc(row.locked_until)
            if locked_until is not None and locked_until > now:
                raise LoginFailed(name, "locked")
            try:
                self.hasher.verify(row.password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                row.failed_attempts += 1
                if row.failed_attempts >= self.lockout_attempts:
                    row.locked_until = now + self.lockout
                    row.failed_attempts = 0
                s.commit()
                raise LoginFailed(name, "bad_password") from None
            if row.disabled:
                raise LoginFailed(name, "disabled")
            row.failed_attempts = 0
            row.locked_until = None
            if self.hasher.check_needs_rehash(row.password_hash):
                row.password_hash = self.hasher.hash(password)
        entry = self.directory.entry(name)
        if entry is not None and entry.disabled:
            raise LoginFailed(name, "disabled")
        if entry is None:
            # Fail closed: an account without a directory entry signs in with no groups.
            return Principal(user_id=name, groups=frozenset())
        return entry.principal()
