"""Issue 14, items 2, 3, 11 and 15 (sync side), through real syncs (parser workers, the embedding
model, Qdrant Edge, SQLite and PostgreSQL state):

- a file whose name is not UTF-8 is recorded as failed with a reason; the revoke and the
  deletion in the same sync still take effect;
- a tightened access rule reaches the chunks of files below a directory the sync cannot list,
  and the unlistable directory is reported;
- a document that expands into too much text is skipped with a reason;
- every sync, completed or failed, writes a ``sync_run`` audit record.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import session_scope
from core.errors import RootEmptyError
from core.settings import Settings
from ingest.sync.run import run_sync
from ingest.sync.state import FileRow, open_state
from policies.service import PolicyService
from tests.ingest.conftest import REPO, dump_index, settings_for, write_docs

pytestmark = pytest.mark.slow

REVOKE_IT = """\
  - path: "it/**"
    groups: [it-staff]
"""


def _rows(settings: Settings) -> dict[str, FileRow]:
    engine = open_state(settings.db_url)
    with session_scope(engine) as s:
        return {r.rel_path: r for r in s.scalars(select(FileRow))}


def _groups_by_path(settings: Settings) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = {}
    for point in dump_index(settings).values():
        payload = point["payload"]
        out.setdefault(payload["path"], set()).add(tuple(payload["allowed_groups"]))
    return out


def _prepend_rule(settings: Settings, rule: str) -> None:
    rules = Path(str(settings.access_rules))
    rules.write_text(rules.read_text().replace("rules:\n", "rules:\n" + rule, 1))


def test_non_utf8_file_name_fails_alone(tmp_path: Path, db_url: str) -> None:
    root = tmp_path / "share"
    write_docs(root)
    settings = settings_for(tmp_path, db_url)
    run_sync(settings, root, "handbook", workers=1)

    # a revoke and a deletion, plus a file named in Latin-1 (not UTF-8) in the same tree
    _prepend_rule(settings, REVOKE_IT)
    (root / "finance/expenses.md").unlink()
    bad = os.path.join(os.fsencode(root / "it"), b"caf\xe9 menu.md")
    with open(bad, "wb") as fh:
        fh.write(b"# Menu\n\nSoup of the day.\n")

    summary = run_sync(settings, root, "handbook", workers=1)
    assert summary.deleted == 1
    assert summary.permissions_updated == 2
    [issue] = summary.failed
    assert issue.code == "ingest.bad_file_name"
    assert issue.path == "it/caf\\xe9 menu.md"
    assert "UTF-8" in issue.reason
    groups = _groups_by_path(settings)
    assert "finance/expenses.md" not in groups
    assert groups["it/vpn.md"] == {("it-staff",)}
    assert groups["it/passwords.txt"] == {("it-staff",)}
    row = _rows(settings)["it/caf\\xe9 menu.md"]
    assert (row.status, row.reason_code) == ("failed", "ingest.bad_file_name")

    again = run_sync(settings, root, "handbook", workers=1)
    assert (again.failed_count, again.deleted, again.added) == (0, 0, 0)


def _sync_without_read_access(root: Path, cfg: Path) -> dict[str, object]:
    """``ingest sync --json`` in a child process that file permissions apply to: as root, it
    runs without the capabilities that bypass them (as an unprivileged service account)."""
    wrap: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "the tests run as root: setpriv (util-linux) drops DAC override"
        wrap = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    args = ["sync", str(root), "--source", "handbook", "--json", "--config", str(cfg)]
    proc = subprocess.run(
        [*wrap, sys.executable, "-m", "ingest.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize("posix", [False, True])
def test_tightened_rule_reaches_an_unlistable_directory(tmp_path: Path, posix: bool) -> None:
    root = tmp_path / "share"
    write_docs(root)
    extra = "[ingest]\nposix_permissions = true\n" if posix else ""
    settings = settings_for(tmp_path, extra=extra)
    run_sync(settings, root, "handbook", workers=1)
    assert _groups_by_path(settings)["hr/leave.md"] == {("hr",)}

    # hr/** is narrowed to hr-managers while the sync cannot list hr/
    rules = Path(str(settings.access_rules))
    rules.write_text(rules.read_text().replace("groups: [hr]\n", "groups: [hr-managers]\n"))
    os.chmod(root / "hr", 0o000)
    try:
        summary = _sync_without_read_access(root, Path(str(settings.config)))
    finally:
        os.chmod(root / "hr", 0o755)

    groups = _groups_by_path(settings)
    assert groups["hr/leave.md"] == {("hr-managers",)}  # recomputed from the rules
    assert groups["hr/confidential/salaries.md"] == {("hr-managers",)}  # unchanged, kept
    assert summary["deleted"] == 0
    assert summary["permissions_updated"] == 1
    assert summary["unlistable"] == [
        {
            "path": "hr",
            "code": "ingest.unlistable",
            "reason": "cannot list directory: Permission denied",
        }
    ]
    assert _rows(settings)["hr/leave.md"].allowed_groups == '["hr-managers"]'


def _docx_bomb(path: Path, paragraphs: int) -> None:
    """A small DOCX whose document.xml repeats one paragraph: deflate makes it tiny on disk."""
    from docx import Document

    buf = io.BytesIO()
    Document().save(buf)
    para = (
        "<w:p><w:r><w:t>The quarterly figures are attached; the totals are in the last column."
        "</w:t></w:r></w:p>"
    )
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                text = data.decode("utf-8")
                start = text.index("<w:body>") + len("<w:body>")
                data = (text[:start] + para * paragraphs + text[start:]).encode("utf-8")
            dst.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def test_expanding_document_is_skipped_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    _docx_bomb(root / "bomb.docx", 400_000)  # ~50 MB of XML in ~150 KB on disk
    assert (root / "bomb.docx").stat().st_size < 300_000
    settings = settings_for(tmp_path)
    summary = run_sync(settings, root, "handbook", workers=1)
    assert summary.added == 6
    [issue] = summary.skipped
    assert (issue.path, issue.code) == ("bomb.docx", "ingest.too_much_text")
    assert "ingest.max_expansion_ratio" in issue.reason
    assert _rows(settings)["bomb.docx"].status == "skipped"


def _sync_runs(settings: Settings) -> list[dict[str, object]]:
    return PolicyService.from_settings(settings).audit.records(event_type="sync_run")


def test_every_sync_writes_a_sync_run_audit_record(tmp_path: Path) -> None:
    root = tmp_path / "share"
    write_docs(root)
    settings = settings_for(tmp_path)
    summary = run_sync(settings, root, "handbook", workers=1)
    [rec] = _sync_runs(settings)
    details = rec["details"]
    assert isinstance(details, dict)
    assert details["source"] == "handbook" and details["status"] == "completed"
    assert details["run_id"] == summary.run_id and details["counters"]["added"] == 6
    assert rec["user_pseudonym"]  # the actor, pseudonymised like every user

    for p in list(root.iterdir()):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    with pytest.raises(RootEmptyError):
        run_sync(settings, root, "handbook", workers=1)
    failed = _sync_runs(settings)[-1]["details"]
    assert isinstance(failed, dict)
    assert (failed["status"], failed["error_code"]) == ("failed", "ingest.root_empty")
