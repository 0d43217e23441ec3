"""Conversation history: each user's conversations and their messages, in the database.

A user sees, reopens and deletes only their own conversations: every read and write takes the
user id and matches it, so a guessed conversation id of someone else behaves as "not found".
Tables live in the assistant package's own Alembic history (version table
``alembic_version_assistant``).

Personal data is masked before it is stored (card numbers, e-mail addresses, IBANs, ...: the
kinds of :mod:`policies.pii`), in titles and messages alike, as in the audit log: the database
keeps what the conversation was about, not the numbers. ``policies audit forget`` deletes a
user's conversations (:mod:`assistant.erasure`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    delete,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.db import migrate, session_scope
from core.errors import ConversationNotFoundError
from core.settings import Settings
from policies.pii import PiiMasker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_assistant"
TITLE_MAX = 80

Role = Literal["user", "assistant"]


class Base(DeclarativeBase):
    metadata = MetaData()


class ConversationRow(Base):
    __tablename__ = "assistant_conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class MessageRow(Base):
    __tablename__ = "assistant_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("assistant_conversations.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    refused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reason_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    audit_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    feedback: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # How an answer was made and what else it rests on: mode, also-retrieved sources,
    # grounding, stopped (revision a0002; NULL on older rows).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    content: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    refused: bool = False
    reason_code: str | None = None
    audit_id: str | None = None
    feedback: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _title_from(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1].rstrip() + "…"


def _to_message(row: MessageRow) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        role=row.role,
        content=row.content,
        citations=list(row.citations or []),
        refused=row.refused,
        reason_code=row.reason_code,
        audit_id=row.audit_id,
        feedback=row.feedback,
        details=dict(row.details or {}),
        created_at=row.created_at,
    )


class HistoryStore:
    """Per-user conversations on one database engine. ``mask``: applied to every title and
    message before it is stored (default: every PII kind; None stores text as given)."""

    def __init__(
        self, engine: Engine, mask: Callable[[str], str] | None = PiiMasker().mask
    ) -> None:
        self.engine = engine
        self._mask = mask

    @classmethod
    def from_settings(cls, settings: Settings) -> HistoryStore:
        """The store with ``policy.mask_pii_in_history`` and ``policy.pii_kinds`` applied."""
        from core.db import make_engine

        pol = settings.policy
        mask = PiiMasker(pol.pii_kinds).mask if pol.mask_pii_in_history else None
        return cls(make_engine(settings.db_url), mask)

    def _clean(self, text: str) -> str:
        return self._mask(text) if self._mask is not None else text

    def migrate(self) -> None:
        migrate(self.engine, MIGRATIONS_DIR, VERSION_TABLE)

    # Conversations -----------------------------------------------------------------------
    def create(self, user_id: str, first_question: str = "New conversation") -> Conversation:
        now = _now()
        row = ConversationRow(
            id=uuid.uuid4().hex,
            user_id=user_id,
            title=_title_from(self._clean(first_question)) or "New conversation",
            created_at=now,
            updated_at=now,
        )
        with session_scope(self.engine) as session:
            session.add(row)
        return Conversation(row.id, row.title, row.created_at, row.updated_at)

    def conversations(self, user_id: str, limit: int = 100) -> list[Conversation]:
        """The user's conversations, most recently used first."""
        with session_scope(self.engine) as session:
            rows = session.scalars(
                select(ConversationRow)
                .where(ConversationRow.user_id == user_id)
                .order_by(ConversationRow.updated_at.desc(), ConversationRow.id)
                .limit(limit)
            ).all()
            return [Conversation(r.id, r.title, r.created_at, r.updated_at) for r in rows]

    def get(self, user_id: str, conversation_id: str) -> Conversation | None:
        """One of the user's own conversations, or None (someone else's id: not found)."""
        with session_scope(self.engine) as session:
            row = session.get(ConversationRow, conversation_id)
            if row is None or row.user_id != user_id:
                return None
            return Conversation(row.id, row.title, row.created_at, row.updated_at)

    def rename(self, user_id: str, conversation_id: str, title: str) -> Conversation:
        """Give one of the user's own conversations a new title (whitespace collapsed)."""
        new = _title_from(title)
        if not new:
            raise ValueError("a title cannot be empty")
        with session_scope(self.engine) as session:
            row = self._owned(session, user_id, conversation_id)
            row.title = new
            return Conversation(row.id, row.title, row.created_at, row.updated_at)

    def search(self, user_id: str, text: str, limit: int = 100) -> list[Conversation]:
        """The user's conversations whose title or any message contains ``text``
        (case-insensitive), most recently used first."""
        needle = f"%{text.strip().lower()}%"
        with session_scope(self.engine) as session:
            in_messages = select(MessageRow.conversation_id).where(MessageRow.content.ilike(needle))
            rows = session.scalars(
                select(ConversationRow)
                .where(
                    ConversationRow.user_id == user_id,
                    ConversationRow.title.ilike(needle) | ConversationRow.id.in_(in_messages),
                )
                .order_by(ConversationRow.updated_at.desc(), ConversationRow.id)
                .limit(limit)
            ).all()
            return [Conversation(r.id, r.title, r.created_at, r.updated_at) for r in rows]

    def delete(self, user_id: str, conversation_id: str) -> None:
        """Delete one of the user's own conversations with its messages."""
        with session_scope(self.engine) as session:
            self._owned(session, user_id, conversation_id)
            session.execute(delete(MessageRow).where(MessageRow.conversation_id == conversation_id))
            session.execute(delete(ConversationRow).where(ConversationRow.id == conversation_id))

    def delete_all(self, user_id: str) -> int:
        """Delete every conversation of ``user_id`` with its messages (erasure); returns how
        many conversations there were."""
        with session_scope(self.engine) as session:
            ids = list(
                session.scalars(
                    select(ConversationRow.id).where(ConversationRow.user_id == user_id)
                )
            )
            if ids:
                session.execute(delete(MessageRow).where(MessageRow.conversation_id.in_(ids)))
                session.execute(delete(ConversationRow).where(ConversationRow.id.in_(ids)))
        return len(ids)

    # Messages ----------------------------------------------------------------------------
    def messages(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        with session_scope(self.engine) as session:
            self._owned(session, user_id, conversation_id)
            rows = session.scalars(
                select(MessageRow)
                .where(MessageRow.conversation_id == conversation_id)
                .order_by(MessageRow.id)
            ).all()
            return [_to_message(r) for r in rows]

    def add_message(
        self,
        user_id: str,
        conversation_id: str,
        role: Role,
        content: str,
        *,
        citations: list[dict[str, Any]] | None = None,
        refused: bool = False,
        reason_code: str | None = None,
        audit_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredMessage:
        with session_scope(self.engine) as session:
            conv = self._owned(session, user_id, conversation_id)
            row = MessageRow(
                conversation_id=conversation_id,
                role=role,
                content=self._clean(content),
                citations=citations or [],
                refused=refused,
                reason_code=reason_code,
                audit_id=audit_id,
                details=details or None,
                created_at=_now(),
            )
            session.add(row)
            conv.updated_at = _now()
            session.flush()
            return _to_message(row)

    def delete_from(self, user_id: str, conversation_id: str, message_id: int) -> int:
        """Delete message ``message_id`` and every later one of the user's own conversation
        (regenerate an answer, edit a question and resend it); returns how many."""
        with session_scope(self.engine) as session:
            self._owned(session, user_id, conversation_id)
            result = session.execute(
                delete(MessageRow).where(
                    MessageRow.conversation_id == conversation_id, MessageRow.id >= message_id
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def set_feedback(self, user_id: str, message_id: int, rating: int) -> None:
        """Record +1 / -1 on one of the user's own assistant messages."""
        if rating not in (1, -1):
            raise ValueError("rating must be 1 or -1")
        with session_scope(self.engine) as session:
            row = session.get(MessageRow, message_id)
            if row is None:
                raise ConversationNotFoundError(f"message {message_id} not found")
            self._owned(session, user_id, row.conversation_id)
            row.feedback = rating

    @staticmethod
    def _owned(session: Session, user_id: str, conversation_id: str) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None or row.user_id != user_id:
            raise ConversationNotFoundError(f"conversation {conversation_id} not found")
        return row
