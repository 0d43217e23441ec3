"""The local tree passes the Source contract."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.sources.base import Source
from ingest.sources.localtree import LocalSource
from tests.sources.contract import SourceContract


class LocalTree:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel_path: str, data: bytes) -> None:
        p = self.root / rel_path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def rename(self, src: str, dst: str) -> None:
        os.rename(self.root / src, self.root / dst)

    def remove(self, rel_path: str) -> None:
        (self.root / rel_path).unlink()

    def open(self) -> Source:
        return LocalSource(self.root)


class TestLocalSource(SourceContract):
    @pytest.fixture
    def tree(self, tmp_path: Path) -> LocalTree:
        root = tmp_path / "tree"
        root.mkdir()
        return LocalTree(root)

    def test_fetch_reads_in_place(self, filled: LocalTree) -> None:
        source = filled.open()
        entry = next(e for e in source.walk() if getattr(e, "rel_path", "") == "a.txt")
        fetched = source.fetch(entry)  # type: ignore[arg-type]
        fetched.release()
        assert fetched.path == filled.root / "a.txt" and fetched.path.exists()
