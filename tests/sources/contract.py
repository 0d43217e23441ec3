"""The :class:`~ingest.sources.base.Source` contract: what every source must do for the planner
and the pipeline. A source's test module subclasses :class:`SourceContract` and provides the
``tree`` fixture (a :class:`Tree` that writes files into a fresh, empty root of that source)."""

from __future__ import annotations

import hashlib
from typing import Protocol

import pytest

from ingest.sources.base import Fetched, FetchError, Rejected, Source, SourceEntry, Unreadable

FILES = {
    "a.txt": b"alpha\n",
    "dir/b.md": b"# Bravo\n\nSome text.\n",
    "dir/sub/c.txt": b"charlie " * 1000,
    "dir/R\u00e9sum\u00e9 \u00fc \u65e5\u672c.txt": b"unicode name\n",
    "dir/a;b&c=d#e%f+g.txt": b"shell characters\n",
    "dir/.hidden": b"hidden\n",
    "dir/~$lock.docx": b"office lock file\n",
    "dir/notes.tmp": b"temp\n",
    "empty.txt": b"",
}
# a directory's files come before its subdirectories' (depth first, names in order)
VISIBLE = [
    "a.txt",
    "empty.txt",
    "dir/R\u00e9sum\u00e9 \u00fc \u65e5\u672c.txt",
    "dir/a;b&c=d#e%f+g.txt",
    "dir/b.md",
    "dir/sub/c.txt",
]


class Tree(Protocol):
    def write(self, rel_path: str, data: bytes) -> None: ...

    def rename(self, src: str, dst: str) -> None: ...

    def remove(self, rel_path: str) -> None: ...

    def open(self) -> Source:
        """A source on the tree's root (closed by the test)."""


def entries(source: Source) -> list[SourceEntry]:
    items = list(source.walk())
    assert not [i for i in items if isinstance(i, Unreadable | Rejected)], items
    return [i for i in items if isinstance(i, SourceEntry)]


class SourceContract:
    @pytest.fixture
    def tree(self) -> Tree:
        raise NotImplementedError("a source's test module provides the tree fixture")

    @pytest.fixture
    def filled(self, tree: Tree) -> Tree:
        for rel, data in FILES.items():
            tree.write(rel, data)
        return tree

    def test_walk_yields_regular_files_depth_first_in_name_order(self, filled: Tree) -> None:
        source = filled.open()
        try:
            assert [e.rel_path for e in entries(source)] == VISIBLE
        finally:
            source.close()

    def test_entries_carry_sizes_and_stable_distinct_keys(self, filled: Tree) -> None:
        source = filled.open()
        try:
            first = {e.rel_path: e for e in entries(source)}
            second = {e.rel_path: e for e in entries(source)}
        finally:
            source.close()
        assert {p: e.size for p, e in first.items()} == {p: len(FILES[p]) for p in VISIBLE}
        assert {p: e.file_key for p, e in first.items()} == {
            p: e.file_key for p, e in second.items()
        }
        assert len({e.file_key for e in first.values()}) == len(first)
        assert all(e.mtime_ns > 0 for e in first.values())

    def test_fetch_gives_a_local_path_with_the_content_and_its_hash(self, filled: Tree) -> None:
        source = filled.open()
        try:
            for entry in entries(source):
                fetched: Fetched = source.fetch(entry)
                try:
                    assert fetched.path.read_bytes() == FILES[entry.rel_path]
                    assert fetched.sha256 == hashlib.sha256(FILES[entry.rel_path]).hexdigest()
                    assert fetched.path.name == entry.rel_path.rsplit("/", 1)[-1]
                finally:
                    fetched.release()
                    fetched.release()  # idempotent
        finally:
            source.close()

    def test_fetch_of_a_vanished_file_is_a_fetch_error(self, filled: Tree) -> None:
        source = filled.open()
        try:
            entry = next(e for e in entries(source) if e.rel_path == "a.txt")
            filled.remove("a.txt")
            with pytest.raises(FetchError) as err:
                source.fetch(entry)
            assert err.value.code == "ingest.unreadable"
        finally:
            source.close()

    def test_exists_and_rename_keeps_the_file_key(self, filled: Tree) -> None:
        source = filled.open()
        try:
            before = {e.rel_path: e.file_key for e in entries(source)}
            assert source.exists("dir/b.md") and not source.exists("dir/nope.md")
            filled.rename("dir/b.md", "dir/renamed.md")
            after = {e.rel_path: e.file_key for e in entries(source)}
            assert not source.exists("dir/b.md") and source.exists("dir/renamed.md")
        finally:
            source.close()
        assert "dir/b.md" not in after
        assert after["dir/renamed.md"] == before["dir/b.md"]

    def test_close_is_idempotent(self, filled: Tree) -> None:
        source = filled.open()
        source.close()
        source.close()
