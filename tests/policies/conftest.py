"""Fixtures for the policies tests: a config with a directory and access rules, on SQLite or on
the CI PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, load_settings

DIRECTORY_YAML = """\
users:
  alice: {groups: [hr, everyone], roles: [employee]}
  hanna: {groups: [hr, hr-managers, everyone], roles: [employee]}
  bob:   {groups: [engineering, everyone], roles: [employee, admin]}
  carol: {groups: [everyone], roles: [compliance]}
  dave:  {groups: [everyone], disabled: true}
"""

RULES_YAML = """\
default: [everyone]
default_classification: internal
rules:
  - path: "hr/confidential/**"
    groups: [hr-managers]
    classification: confidential
  - path: "hr/**"
    groups: [hr]
  - path: "finance/**"
    source: shared
    groups: [finance]
"""


def write_config(tmp: Path, db_url: str | None = None, **policy: str) -> Path:
    (tmp / "directory.yaml").write_text(DIRECTORY_YAML)
    (tmp / "access.yaml").write_text(RULES_YAML)
    lines = [
        f'data_dir = "{tmp / "data"}"',
        'directory = "directory.yaml"',
        'access_rules = "access.yaml"',
    ]
    if db_url:
        lines.append(f'database_url = "{db_url}"')
    if policy:
        lines.append("[policy]")
        lines += [f'{k} = "{v}"' for k, v in policy.items()]
    cfg = tmp / "enclave.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return load_settings(config_file)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A config file on SQLite, then on real PostgreSQL (skipped outside CI without a server)."""
    if request.param == "sqlite":
        yield write_config(tmp_path)
    else:
        url = request.getfixturevalue("pg_database")
        yield write_config(tmp_path, db_url=url)
