"""Copy Enclave's database to another server: the upgrade from SQLite to PostgreSQL.

``policies db copy --to postgresql://...`` copies every table of every package that has tables
in the source (ingest sync state, policies' audit log and accounts, assistant history): the
packages are found by their Alembic version tables (``alembic_version_<package>``), and each
package's own migrations (``<package>/migrations``, located without importing the package)
create the target schema, so the target is exactly what the app would create. Rows are then
copied table by table in foreign-key order, read from one consistent snapshot of the source,
and written in ONE transaction: an interrupted copy leaves the target without rows and simply
runs again. PostgreSQL sequences are moved past the copied ids, so new rows do not collide.

The audit chain is copied verbatim (ids, timestamps, hashes, checkpoints), so it still verifies
on the target; the audit keys stay in ``<data_dir>/keys`` (or ``policy.*_key_file``) and must go
with it. A target whose Enclave tables already hold rows is refused unless ``force`` (its rows
are then replaced). Stop the UI and the scheduled sync while copying.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url

from core.db import make_engine, migrate
from core.errors import (
    ConfigError,
    DatabaseError,
    DbTargetNotEmptyError,
    SameDatabaseError,
)

VERSION_PREFIX = "alembic_version_"


@dataclass(frozen=True)
class DatabaseCopy:
    packages: list[str]
    rows: dict[str, int]  # table -> rows copied
    sequences: list[str]  # PostgreSQL sequences moved past the copied ids

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrations_dir(package: str) -> Path:
    """``<package>/migrations`` of an installed Enclave package (found, not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            f"the source database has tables of package {package!r}, which is not installed here"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    if not (path / "env.py").exists():
        raise DatabaseError(f"package {package!r} has no Alembic migrations at {path}")
    return path


def packages_in(engine: Engine) -> list[str]:
    names = inspect(engine).get_table_names()
    return sorted(n.removeprefix(VERSION_PREFIX) for n in names if n.startswith(VERSION_PREFIX))


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _app_tables(meta: MetaData) -> list[Table]:
    return [t for t in meta.sorted_tables if not t.name.startswith(VERSION_PREFIX)]


def _adapt(target: Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """SQLite keeps no time zone: a naive timestamp the app wrote is UTC; say so for
    ``timestamptz`` columns so PostgreSQL does not read it in the session's zone."""
    aware = [c.name for c in target.columns if isinstance(c.type, DateTime) and c.type.timezone]

    def adapt(row: dict[str, Any]) -> dict[str, Any]:
        for name in aware:
            value = row.get(name)
            if isinstance(value, datetime) and value.tzinfo is None:
                row[name] = value.replace(tzinfo=UTC)
        return row

    return adapt


def _table_rows(conn: Connection, table: Table) -> list[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    return [dict(r) for r in conn.execute(select(table).order_by(*order)).mappings()]


def _seed_rows(packages: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Rows the packages' migrations insert by themselves (e.g. the audit chain's genesis
    head): a target holding only those is as good as empty."""
    with tempfile.TemporaryDirectory(prefix="enclave-seed-") as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'seed.db'}")
        try:
            for package in packages:
                migrate(engine, migrations_dir(package), VERSION_PREFIX + package)
            meta = MetaData()
            meta.reflect(engine)
            with engine.connect() as conn:
                return {t.name: rows for t in _app_tables(meta) if (rows := _table_rows(conn, t))}
        finally:
            engine.dispose()


def _fix_sequences(conn: Connection, tables: list[Table]) -> list[str]:
    fixed = []
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            seq = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar()
            if seq is None:
                continue
            top = conn.execute(select(func.max(column))).scalar()
            # is_called=false: the next nextval() returns exactly max+1 (1 for an empty table)
            conn.execute(text("SELECT setval(:s, :v, false)"), {"s": seq, "v": int(top or 0) + 1})
            fixed.append(str(seq))
    return fixed


def copy_database(
    source_url: str,
    target_url: str,
    *,
    force: bool = False,
    batch_size: int = 2000,
    on_rows: Callable[[str, int], None] | None = None,
) -> DatabaseCopy:
    """Copy every Enclave table from ``source_url`` to ``target_url`` (module docstring)."""
    if make_url(source_url) == make_url(target_url):
        raise SameDatabaseError(f"source and target are the same database: {safe_url(source_url)}")
    source, target = make_engine(source_url), make_engine(target_url)
    packages = packages_in(source)
    if not packages:
        raise DatabaseError(
            f"{safe_url(source_url)} holds no Enclave tables (no alembic_version_* table): "
            "nothing to copy. Is --config pointing at the right data dir?"
        )
    for package in packages:
        where = migrations_dir(package)
        # the source too: an older data dir is first brought to this version's schema,
        # exactly as the app would on its next start
        migrate(source, where, VERSION_PREFIX + package)
        migrate(target, where, VERSION_PREFIX + package)

    src_meta, dst_meta = MetaData(), MetaData()
    src_meta.reflect(source)
    dst_meta.reflect(target)
    tables = _app_tables(dst_meta)
    missing = [t.name for t in _app_tables(src_meta) if t.name not in dst_meta.tables]
    if missing:
        raise DatabaseError(f"tables {missing} of the source are not in the migrated target")

    seeds = _seed_rows(packages)
    with target.connect() as probe:
        filled = {
            t.name: n
            for t in tables
            if (n := _count(probe, t)) and _table_rows(probe, t) != seeds.get(t.name)
        }
    if filled and not force:
        listing = ", ".join(f"{name} ({n} rows)" for name, n in sorted(filled.items()))
        raise DbTargetNotEmptyError(
            f"the target {safe_url(target_url)} already holds Enclave data: {listing}. "
            "Copy into an empty database, or use --force to replace those rows."
        )

    copied: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        if source.dialect.name == "sqlite":
            src.exec_driver_sql("BEGIN")  # one snapshot for every table (WAL read transaction)
        else:  # one snapshot for every table on a server database too
            src.execution_options(isolation_level="REPEATABLE READ")
        for table in reversed(tables):
            dst.execute(table.delete())
        for table in tables:
            if table.name not in src_meta.tables:
                continue
            src_table = src_meta.tables[table.name]
            if set(src_table.columns.keys()) != set(table.columns.keys()):
                raise DatabaseError(
                    f"table {table.name}: columns differ between source and target after "
                    "migration; is this the same Enclave version on both sides?"
                )
            adapt = _adapt(table)
            order = list(src_table.primary_key.columns) or list(src_table.columns)
            result = src.execute(select(src_table).order_by(*order)).mappings()
            copied[table.name] = 0
            while batch := result.fetchmany(batch_size):
                dst.execute(table.insert(), [adapt(dict(row)) for row in batch])
                copied[table.name] += len(batch)
                if on_rows is not None:
                    on_rows(table.name, len(batch))
            expected = _count(src, src_table)
            if expected != copied[table.name]:
                raise DatabaseError(
                    f"table {table.name}: read {copied[table.name]} rows but it holds {expected}"
                )
        sequences = _fix_sequences(dst, tables) if target.dialect.name == "postgresql" else []
        src.rollback()
    return DatabaseCopy(packages=packages, rows=copied, sequences=sequences)


def read_url_file(path: Path) -> str:
    """The URL in a secret file (``--to-file``): keeps the password off the process list."""
    try:
        url = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"--to-file {path}: {exc.strerror}") from exc
    if not url:
        raise ConfigError(f"--to-file {path} is empty")
    return url
