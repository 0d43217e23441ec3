from __future__ import annotations

import os
import types
from pathlib import Path

from ingest.sources.local import (
    SYMLINK_OUTSIDE_ROOT,
    FileEntry,
    Rejected,
    Unreadable,
    is_ignored,
    walk,
)


def _tree(root: Path) -> None:
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "leave.md").write_text("leave policy")
    (root / "hr" / "~$leave.docx").write_text("office owner file")
    (root / "hr" / ".~lock.leave.odt#").write_text("libreoffice lock")
    (root / "it").mkdir()
    (root / "it" / "vpn.txt").write_text("vpn howto")
    (root / "it" / "draft.tmp").write_text("temp")
    (root / "it" / ".DS_Store").write_text("mac")
    (root / "it" / "Thumbs.db").write_text("win")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("hidden dir")
    (root / "a.md").write_text("top")


def test_yields_regular_files_in_order_and_skips_hidden_temp_lock(tmp_path: Path) -> None:
    _tree(tmp_path)
    items = list(walk(tmp_path))
    assert all(isinstance(i, FileEntry) for i in items)
    assert [i.rel_path for i in items if isinstance(i, FileEntry)] == [
        "a.md",
        "hr/leave.md",
        "it/vpn.txt",
    ]
    entry = items[1]
    assert isinstance(entry, FileEntry)
    st = os.stat(tmp_path / "hr" / "leave.md")
    assert (entry.size, entry.mtime_ns, entry.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)


def test_walk_is_a_lazy_generator(tmp_path: Path) -> None:
    _tree(tmp_path)
    gen = walk(tmp_path)
    assert isinstance(gen, types.GeneratorType)
    first = next(gen)
    assert isinstance(first, FileEntry) and first.rel_path == "a.md"


def test_symlinks_outside_are_rejected_inside_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "payroll.txt").write_text("salaries")
    _tree(root)
    (root / "leak.txt").symlink_to(outside / "payroll.txt")
    (root / "leakdir").symlink_to(outside)
    (root / "alias.md").symlink_to(root / "a.md")
    (root / "loop").symlink_to(root)
    items = list(walk(root))
    rejected = {i.rel_path: i for i in items if isinstance(i, Rejected)}
    assert set(rejected) == {"leak.txt", "leakdir"}
    assert all(r.code == SYMLINK_OUTSIDE_ROOT for r in rejected.values())
    files = [i.rel_path for i in items if isinstance(i, FileEntry)]
    assert files == ["a.md", "hr/leave.md", "it/vpn.txt"]  # no alias.md, no loop/...


def test_fifo_is_ignored(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "doc.txt").write_text("x")
    assert [i.rel_path for i in walk(tmp_path) if isinstance(i, FileEntry)] == ["doc.txt"]


def test_root_given_through_a_symlink(tmp_path: Path) -> None:
    _tree(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    files = [i.rel_path for i in walk(tmp_path / "link") if isinstance(i, FileEntry)]
    assert files == ["a.md", "hr/leave.md", "it/vpn.txt"]


def test_unreadable_directory_is_reported(tmp_path: Path) -> None:
    _tree(tmp_path)
    missing = tmp_path / "gone"
    items = list(walk(missing))
    assert len(items) == 1 and isinstance(items[0], Unreadable) and items[0].rel_dir == ""


def test_ignore_rules() -> None:
    for name in [
        "~$report.docx",
        ".~lock.x.odt#",
        "x.tmp",
        "X.TMP",
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        "file.swp",
        "backup~",
        "movie.part",
        ".hidden",
    ]:
        assert is_ignored(name), name
    for name in ["report.docx", "tmp.md", "notes~draft.txt", "temperature.csv"]:
        assert not is_ignored(name), name
