"""Database engine and migrations shared by every package.

SQLite (WAL, busy timeout, foreign keys) in the data dir by default; PostgreSQL by URL. Each
package owns its tables and its Alembic history (``<package>/migrations``) with its own version
table, so ingest, policies and the assistant migrate independently and never conflict.

The SQLite file holds chat history, pseudonymised audit records and sync state: it is created
0600 (its directory 0700 when Enclave creates it), and an existing file readable by others is
tightened on open. SQLite gives the ``-wal`` and ``-shm`` files the database file's mode.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from core.errors import DatabaseError

_ENGINES: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def private_sqlite_file(path: Path) -> None:
    """Create ``path`` 0600 (parent 0700 if new), or take group/other access away from an
    existing file and its ``-wal``/``-shm`` companions (when this user owns them)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)


def make_engine(url: str) -> Engine:
    """Create (or reuse, per URL and process) an engine with Enclave's connection settings."""
    engine = _ENGINES.get(url)
    if engine is not None:
        return engine
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            private_sqlite_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    _ENGINES[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a fork)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


_ALEMBIC_IN_PROCESS = threading.RLock()


@contextmanager
def migration_lock(engine: Engine, name: str) -> Iterator[None]:
    """Serialize migrations of one package across processes (several UI replicas or CLIs
    starting at once): a PostgreSQL advisory lock, or a lock file beside the SQLite file."""
    if engine.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    db_path = engine.url.database
    if not db_path or db_path == ":memory:":
        yield
        return
    lock_path = Path(db_path).with_name(f"{Path(db_path).name}.{name}.lock")
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def migrate(engine: Engine, migrations_dir: Path, version_table: str) -> None:
    """Bring one package's tables to its newest Alembic revision (serialized across processes)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["engine"] = engine
    cfg.attributes["version_table"] = version_table
    try:
        # Alembic's ``context`` is one module-level proxy per process: two threads migrating
        # (even different packages) would run inside each other's configuration.
        with _ALEMBIC_IN_PROCESS, migration_lock(engine, version_table):
            command.upgrade(cfg, "head")
    except Exception as exc:
        raise DatabaseError(f"migration of {migrations_dir.parent.name} failed: {exc}") from exc


def run_env(metadata: MetaData) -> None:
    """Body of every package's ``migrations/env.py`` (online mode only)."""
    from alembic import context

    cfg = context.config
    engine: Engine = cfg.attributes["engine"]
    version_table: str = cfg.attributes["version_table"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
