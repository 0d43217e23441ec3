"""Sign-in sessions: a signed, expiring, server-revocable cookie and its row in the database.

Why a cookie at all: Streamlit keeps ``st.session_state`` per browser tab and connection, so a
refresh or a link opened in a new tab used to sign the user out. The browser now holds a cookie
``enclave_session`` = ``<session id>.<expiry>.<HMAC>``:

- **signed**: the HMAC-SHA256 is keyed with ``ui.session_key_file`` (default
  ``<data_dir>/keys/ui-session.key``, 0600, outside the database), so neither the browser nor
  someone who can write the database can mint one;
- **expiring**: the expiry is inside the signed value and in the row (``ui.session_hours``), and
  a session unused for ``ui.session_idle_minutes`` ends too;
- **server-revocable**: every request looks the row up; sign-out, an administrator or a changed
  account (see :mod:`ui.auth`) revoke it, and the cookie is worthless from then on;
- **HttpOnly, SameSite=Strict**: set by an HTTP route of the UI server (:mod:`ui.server`), never
  readable by page scripts. The page receives only a one-time *claim code* (valid two minutes)
  that the browser exchanges for the cookie.

Table ``ui_sessions`` lives in the UI package's own Alembic history (``alembic_version_ui``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, String, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db import make_engine, migrate, session_scope
from core.settings import Settings
from policies.identity import Principal
from policies.keys import load_or_create_hmac_key

if TYPE_CHECKING:
    from policies.service import PolicyService

COOKIE = "enclave_session"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_ui"
CLAIM_TTL = timedelta(minutes=2)
TOUCH_EVERY = timedelta(seconds=60)


class Base(DeclarativeBase):
    metadata = MetaData()


class SessionRow(Base):
    __tablename__ = "ui_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False)  # "local" | "oidc"
    stamp: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    claim_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)


@dataclass(frozen=True)
class Session:
    """A live session (not revoked, not expired) as read from its row."""

    id: str
    user_id: str
    method: str
    stamp: str | None
    claimed: Principal | None
    expires_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class NewSession:
    session: Session
    claim_code: str  # hand to the browser once; it exchanges it for the cookie


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _principal_json(p: Principal | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"user_id": p.user_id, "groups": sorted(p.groups), "roles": sorted(p.roles)}


def _principal_of(data: dict[str, Any] | None) -> Principal | None:
    if not data:
        return None
    return Principal(
        user_id=str(data["user_id"]),
        groups=frozenset(data.get("groups") or ()),
        roles=frozenset(data.get("roles") or ()),
    )


class SessionStore:
    def __init__(self, engine: Engine, key: bytes, *, max_age: timedelta, idle: timedelta) -> None:
        self.engine = engine
        self._key = key
        self.max_age = max_age
        self.idle = idle

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionStore:
        store = cls(
            make_engine(settings.db_url),
            load_or_create_hmac_key(
                settings.ui.session_key_file or settings.keys_dir / "ui-session.key"
            ),
            max_age=timedelta(hours=settings.ui.session_hours),
            idle=timedelta(minutes=settings.ui.session_idle_minutes),
        )
        store.migrate()
        return store

    def migrate(self) -> None:
        migrate(self.engine, MIGRATIONS_DIR, VERSION_TABLE)

    # The cookie ------------------------------------------------------------------------------
    def _sign(self, session_id: str, expires: int) -> str:
        mac = hmac.new(self._key, f"ui-session\x00{session_id}\x00{expires}".encode(), "sha256")
        return mac.hexdigest()

    def cookie_value(self, session: Session) -> str:
        expires = int(session.expires_at.timestamp())
        return f"{session.id}.{expires}.{self._sign(session.id, expires)}"

    def session_id_of(self, cookie: str | None, now: datetime | None = None) -> str | None:
        """The session id a cookie names if its signature holds and it has not expired."""
        if not cookie or cookie.count(".") != 2:
            return None
        session_id, expires_s, mac = cookie.split(".")
        if not expires_s.isdigit():
            return None
        if not hmac.compare_digest(mac, self._sign(session_id, int(expires_s))):
            return None
        now = now or datetime.now(UTC)
        if int(expires_s) <= now.timestamp():
            return None
        return session_id

    # Lifecycle -------------------------------------------------------------------------------
    def create(
        self,
        user_id: str,
        method: str,
        *,
        stamp: str | None = None,
        claimed: Principal | None = None,
    ) -> NewSession:
        now = datetime.now(UTC)
        session_id = secrets.token_hex(24)
        code = secrets.token_urlsafe(24)
        row = SessionRow(
            id=session_id,
            user_id=user_id,
            method=method,
            stamp=stamp,
            claimed=_principal_json(claimed),
            claim_hash=_digest(code),
            claim_expires_at=now + CLAIM_TTL,
            created_at=now,
            expires_at=now + self.max_age,
            last_seen_at=now,
        )
        with session_scope(self.engine) as s:
            s.add(row)
        return NewSession(self._live(row), code)

    def claim(self, code: str) -> str | None:
        """Exchange a one-time claim code for the cookie value (None if unknown or stale)."""
        if not code:
            return None
        now = datetime.now(UTC)
        with session_scope(self.engine) as s:
            row = s.scalar(select(SessionRow).where(SessionRow.claim_hash == _digest(code)))
            if row is None:
                return None
            row.claim_hash = None  # one time only
            expired = (_utc(row.claim_expires_at) or now) <= now
            if expired or not self._valid(row, now):
                return None
            session = self._live(row)
        return self.cookie_value(session)

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id; None if unknown, revoked, expired or idle too long.

        Records the use (at most once a minute) so the idle timeout counts from the last
        request."""
        if not session_id:
            return None
        now = datetime.now(UTC)
        with session_scope(self.engine) as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                return None
            if not self._valid(row, now):
                if row.revoked_at is None:
                    row.revoked_at = now
                    row.revoked_reason = "expired"
                return None
            if now - (_utc(row.last_seen_at) or now) >= TOUCH_EVERY:
                row.last_seen_at = now
            return self._live(row)

    def update_claimed(self, session_id: str, claimed: Principal) -> None:
        """Keep an OIDC session's groups and roles as the latest token says."""
        with session_scope(self.engine) as s:
            s.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id)
                .values(claimed=_principal_json(claimed))
            )

    def revoke(self, session_id: str, reason: str) -> None:
        now = datetime.now(UTC)
        with session_scope(self.engine) as s:
            s.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason[:64])
            )

    def revoke_user(self, user_id: str, reason: str) -> int:
        """End every live session of ``user_id``; returns how many."""
        now = datetime.now(UTC)
        with session_scope(self.engine) as s:
            result = s.execute(
                update(SessionRow)
                .where(SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason[:64])
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # Helpers ---------------------------------------------------------------------------------
    def _valid(self, row: SessionRow, now: datetime) -> bool:
        if row.revoked_at is not None:
            return False
        expires = _utc(row.expires_at)
        seen = _utc(row.last_seen_at)
        if expires is None or expires <= now:
            return False
        return seen is not None and now - seen < self.idle

    @staticmethod
    def _live(row: SessionRow) -> Session:
        expires = _utc(row.expires_at)
        seen = _utc(row.last_seen_at)
        assert expires is not None and seen is not None
        return Session(
            id=row.id,
            user_id=row.user_id,
            method=row.method,
            stamp=row.stamp,
            claimed=_principal_of(row.claimed),
            expires_at=expires,
            last_seen_at=seen,
        )


def session_principal(
    policies: PolicyService, store: SessionStore, session: Session
) -> Principal | None:
    """Who a live session acts for *now*, or None after revoking it.

    Checked on every request (each Streamlit rerun, each file download): a local account must
    still have the credential stamp the session was made with (``policies users disable``,
    ``enable`` and ``reset-password`` change it), and the directory must not mark the user
    disabled; groups and roles are the current ones (:meth:`PolicyService.current_principal`)."""
    if session.method == "local":
        stamp = policies.accounts.credential_stamp(session.user_id)
        if stamp is None or stamp != session.stamp:
            store.revoke(session.id, "account_changed")
            return None
        principal = policies.current_principal(session.user_id)
    else:
        principal = policies.current_principal(session.user_id, claimed=session.claimed)
    if principal is None:
        store.revoke(session.id, "account_disabled")
    return principal
