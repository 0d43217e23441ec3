"""Alembic environment of the UI package (sign-in sessions)."""

from core.db import run_env
from ui.sessions import Base

run_env(Base.metadata)
