"""Erasure across packages: delete what every package keeps about one person.

``policies audit forget --user U`` must reach data that packages above ``policies`` own (the
assistant's chat history) without ``policies`` importing them. Like ``policies db copy``
(:mod:`core.dbcopy`), this finds the packages that have tables in the database by their Alembic
version tables (``alembic_version_<package>``); a package that stores personal data provides a
module ``<package>.erasure`` with ``forget_user(engine, user_id) -> int`` (rows deleted). The
``policies`` package erases its own data itself and is skipped here.
"""

from __future__ import annotations

import importlib
import importlib.util

from sqlalchemy import Engine

from core.dbcopy import packages_in

HOOK = "erasure"


def erase_user_everywhere(engine: Engine, user_id: str) -> dict[str, int]:
    """Call every installed package's erasure hook; returns rows deleted per package."""
    done: dict[str, int] = {}
    for package in packages_in(engine):
        if package == "policies" or importlib.util.find_spec(package) is None:
            continue
        name = f"{package}.{HOOK}"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        done[package] = int(module.forget_user(engine, user_id))
    return done
