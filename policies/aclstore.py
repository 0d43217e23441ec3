"""The permissions each synced file's readers were decided from, kept for
``policies check-access``.

The sync writes a file's *facts* (an SMB file's security descriptor, a local file's POSIX
permissions; :mod:`policies.readers`) here whenever they change, in the same transaction as the
file's state row, and drops the facts of files the source no longer has. check-access reads
them back and runs the same :func:`~policies.readers.decide` the sync ran, so it explains what
the index enforces now (not what the share says this minute, which the next sync picks up).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from policies.readers import Facts, facts_from_bytes
from policies.tables import AclFactRow


def fact_key(source: str, rel_path: str) -> str:
    return hashlib.sha256(f"{source}\x00{rel_path}".encode()).hexdigest()


def put_many(session: Session, source: str, facts: Iterable[tuple[str, str, bytes, str]]) -> None:
    """Store ``(rel_path, kind, data, sha256)`` of many files with one lookup per 500 files (a
    permission change on a folder rewrites the facts of every file below it)."""
    by_key = {fact_key(source, rel): (rel, kind, data, sha) for rel, kind, data, sha in facts}
    keys = list(by_key)
    now = datetime.now(UTC)
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        found = session.scalars(select(AclFactRow).where(AclFactRow.key.in_(part)))
        rows = {r.key: r for r in found}
        for key in part:
            rel, kind, data, sha = by_key[key]
            row = rows.get(key)
            if row is None:
                session.add(
                    AclFactRow(
                        key=key,
                        source=source,
                        rel_path=rel,
                        kind=kind,
                        sha256=sha,
                        data=data,
                        updated_at=now,
                    )
                )
            elif row.sha256 != sha or row.rel_path != rel:
                row.rel_path, row.kind, row.sha256, row.data = rel, kind, sha, data
                row.updated_at = now


def forget(session: Session, source: str, rel_paths: Iterable[str]) -> None:
    keys = [fact_key(source, p) for p in rel_paths]
    for start in range(0, len(keys), 500):
        session.execute(delete(AclFactRow).where(AclFactRow.key.in_(keys[start : start + 500])))


def get(session: Session, source: str, rel_path: str) -> tuple[Facts, str] | None:
    """The stored facts of a file and their sha256, or None (never synced with permissions)."""
    row = session.get(AclFactRow, fact_key(source, rel_path))
    if row is None:
        return None
    return facts_from_bytes(row.kind, row.data), row.sha256


def paths_of(session: Session, source: str) -> Iterable[str]:
    """Every path of ``source`` with stored facts (pruning after a sync)."""
    yield from session.scalars(select(AclFactRow.rel_path).where(AclFactRow.source == source))
