"""Conversation history on real SQLite and real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from assistant.history import HistoryStore
from core.db import make_engine
from core.errors import ConversationNotFoundError


def _exercise(store: HistoryStore) -> None:
    store.migrate()
    store.migrate()  # idempotent
    assert "alembic_version_assistant" in inspect(store.engine).get_table_names()

    a = store.create("alice", "What is the   travel\npolicy for trains?")
    assert a.title == "What is the travel policy for trains?"
    store.add_message("alice", a.id, "user", "What is the travel policy?")
    answer = store.add_message(
        "alice",
        a.id,
        "assistant",
        "Second class [1].",
        citations=[{"n": 1, "path": "policies/travel.md", "page": None}],
        audit_id="42",
    )
    b = store.create("alice", "x" * 300)
    assert len(b.title) == 80 and b.title.endswith("…")
    bob = store.create("bob", "bob's question")

    listed = store.conversations("alice")
    assert [c.id for c in listed] == [b.id, a.id]  # most recent first
    assert [c.id for c in store.conversations("bob")] == [bob.id]

    msgs = store.messages("alice", a.id)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[1].citations == [{"n": 1, "path": "policies/travel.md", "page": None}]
    assert msgs[1].audit_id == "42"

    # Another user can neither read, write, rate nor delete alice's conversation.
    with pytest.raises(ConversationNotFoundError):
        store.messages("bob", a.id)
    with pytest.raises(ConversationNotFoundError):
        store.add_message("bob", a.id, "user", "sneaky")
    with pytest.raises(ConversationNotFoundError):
        store.set_feedback("bob", answer.id, 1)
    with pytest.raises(ConversationNotFoundError):
        store.delete("bob", a.id)

    # Details of an answer, rename, search, and deleting from a message on (regenerate/edit).
    later = store.add_message(
        "alice", a.id, "assistant", "Stopped", reason_code="ui.stopped", details={"stopped": True}
    )
    assert store.messages("alice", a.id)[-1].details == {"stopped": True}
    assert store.messages("alice", a.id)[0].details == {}
    assert store.get("alice", a.id) is not None and store.get("bob", a.id) is None
    assert store.rename("alice", a.id, "  Train   travel ").title == "Train travel"
    with pytest.raises(ValueError):
        store.rename("alice", a.id, "   ")
    with pytest.raises(ConversationNotFoundError):
        store.rename("bob", a.id, "mine now")
    assert [c.id for c in store.search("alice", "TRAIN")] == [a.id]  # title, any case
    assert [c.id for c in store.search("alice", "second class")] == [a.id]  # message text
    assert store.search("bob", "train") == []
    assert store.delete_from("alice", a.id, later.id) == 1
    with pytest.raises(ConversationNotFoundError):
        store.delete_from("bob", a.id, answer.id)
    assert [m.content for m in store.messages("alice", a.id)] == [
        "What is the travel policy?",
        "Second class [1].",
    ]

    store.set_feedback("alice", answer.id, -1)
    assert store.messages("alice", a.id)[1].feedback == -1
    with pytest.raises(ValueError):
        store.set_feedback("alice", answer.id, 5)

    store.delete("alice", a.id)
    assert [c.id for c in store.conversations("alice")] == [b.id]
    with pytest.raises(ConversationNotFoundError):
        store.messages("alice", a.id)
    assert [c.id for c in store.conversations("bob")] == [bob.id]


def test_history_sqlite(tmp_path: Path) -> None:
    _exercise(HistoryStore(make_engine(f"sqlite:///{tmp_path / 'h.db'}")))


@pytest.mark.postgres
def test_history_postgres(pg_database: str) -> None:
    _exercise(HistoryStore(make_engine(pg_database)))
