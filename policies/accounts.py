"""Local accounts (the embedded default's sign-in): argon2id password hashes in the database.

Groups and roles are not stored here: a local account links by name to its directory entry.
:meth:`LocalAccounts.authenticate` answers every failure (unknown name, wrong password, disabled,
locked out) with the same message after exactly one argon2 verification (an unknown name is
checked against a dummy hash with the same parameters, a locked account against its own hash),
so neither the message nor the time to answer reveals which accounts exist or are locked. After
``lockout_attempts`` consecutive failures an account is locked for ``lockout_minutes``; failures
are counted by one atomic ``UPDATE`` in the database, so parallel attempts (threads, processes,
replicas) cannot lose a count.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, case, or_, select, update

from core.db import session_scope
from core.errors import AccountError, LoginFailed
from policies.directory import DirectoryBackend
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
        directory: DirectoryBackend,
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

    def _dummy(self) -> str:
        """An argon2 hash with this hasher's parameters and a random digest: verifying against
        it costs what verifying a real hash costs (and never succeeds)."""
        if self._dummy_hash is None:
            h = self.hasher

            def b64(n: int) -> str:
                return base64.b64encode(secrets.token_bytes(n)).decode().rstrip("=")

            self._dummy_hash = (
                f"$argon2id$v=19$m={h.memory_cost},t={h.time_cost},p={h.parallelism}"
                f"${b64(h.salt_len)}${b64(h.hash_len)}"
            )
        return self._dummy_hash

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _count_failure(self, name: str, now: datetime) -> None:
        """One atomic UPDATE: add a failure, or lock and restart the count at the limit."""
        t = self._table
        reached = t.failed_attempts + 1 >= self.lockout_attempts
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.name == name)
                .values(
                    failed_attempts=case((reached, 0), else_=t.failed_attempts + 1),
                    locked_until=case((reached, now + self.lockout), else_=t.locked_until),
                )
            )

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
            snapshot = None if row is None else (row.password_hash, row.disabled, row.locked_until)
        if snapshot is None:
            self._verify(self._dummy(), password)
            raise LoginFailed(name, "unknown")
        password_hash, disabled, locked = snapshot
        good = self._verify(password_hash, password)  # also when locked: same time to answer
        locked_until = _utc(locked)
        if locked_until is not None and locked_until > now:
            raise LoginFailed(name, "locked")
        if not good:
            self._count_failure(name, now)
            raise LoginFailed(name, "bad_password")
        if disabled:
            raise LoginFailed(name, "disabled")
        t = self._table
        values: dict[str, object] = {"failed_attempts": 0, "locked_until": None}
        if self.hasher.check_needs_rehash(password_hash):
            values["password_hash"] = self.hasher.hash(password)
        with self.engine.begin() as conn:
            # only if no parallel failure locked the account since it was read
            done = conn.execute(
                update(t)
                .where(t.name == name, or_(t.locked_until.is_(None), t.locked_until <= now))
                .values(**values)
            )
        if done.rowcount == 0:
            raise LoginFailed(name, "locked")
        entry = self.directory.entry(name)
        if entry is not None and entry.disabled:
            raise LoginFailed(name, "disabled")
        if entry is None:
            # Fail closed: an account without a directory entry signs in with no groups.
            return Principal(user_id=name, groups=frozenset())
        return entry.principal()
