"""The image installs Enclave as a wheel (`pip install .`, not editable): everything the app
reads at run time besides Python modules must be in it, above all every package's Alembic
migrations (the database copy and every start run them) and the shipped policy files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy import deployfiles as files

PACKAGES = ("policies", "ingest", "assistant", "ui")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    shutil.copy(files.ROOT / "pyproject.toml", src)
    readme = files.ROOT / "README.md"
    (src / "README.md").write_text(readme.read_text() if readme.exists() else "# Enclave\n")
    for pkg in PACKAGES:
        shutil.copytree(
            files.ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("enclave-*.whl")
    return zipfile.ZipFile(built)


def _tree_files(pattern: str) -> set[str]:
    return {
        p.relative_to(files.ROOT).as_posix()
        for pkg in PACKAGES
        for p in (files.ROOT / pkg).rglob(pattern)
        if "__pycache__" not in p.parts
    }


def test_every_migration_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    migrations = {
        f for f in _tree_files("*") if "/migrations/" in f and Path(f).suffix in {".py", ".mako"}
    }
    assert {"policies/migrations/env.py", "ingest/migrations/env.py"} <= migrations
    assert migrations - names == set()


def test_shipped_data_files_are_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    data = _tree_files("*.yaml") | _tree_files("*.toml") | _tree_files("*.json")
    assert data - names == set()
