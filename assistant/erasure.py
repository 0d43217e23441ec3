"""Erasure hook of the assistant package (:mod:`core.erasure`): a user's chat history."""

from __future__ import annotations

from sqlalchemy import Engine

from assistant.history import HistoryStore


def forget_user(engine: Engine, user_id: str) -> int:
    """Delete every conversation (with its messages) of ``user_id``; returns conversations."""
    return HistoryStore(engine).delete_all(user_id)
