"""Alembic environment of the assistant package (conversation history)."""

from assistant.history import Base
from core.db import run_env

run_env(Base.metadata)
