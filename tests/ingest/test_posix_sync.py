"""A local tree with ``ingest.posix_permissions``: POSIX ACLs (setfacl) narrow the rule groups,
deny named users, and an ACL edit alone is a permission-only re-sync."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.sync.run import run_sync
from tests.ingest.conftest import dump_index, settings_for

if shutil.which("setfacl") is None:
    if os.environ.get("CI"):
        pytest.fail("setfacl (Debian acl) is missing in CI: .ci/run installs it", pytrace=False)
    pytestmark = pytest.mark.skip(reason="setfacl is not installed")

RULES = 'rules:\n  - path: "**"\n    groups: [root, users, adm]\n'


def payload_of(settings: object, rel: str) -> dict[str, object]:
    points = [p["payload"] for p in dump_index(settings).values()]  # type: ignore[arg-type]
    return next(p for p in points if p["path"] == rel)


def test_posix_acl_narrows_denies_and_resyncs_permission_only(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    doc = root / "plan.md"
    doc.write_text("# Plan\n\nThe rollout of the new badge readers starts in May.\n")
    os.chown(doc, 0, 0)
    doc.chmod(0o640)
    subprocess.run(["setfacl", "-m", "g:users:r,u:daemon:-", str(doc)], check=True)
    settings = settings_for(tmp_path, extra="[ingest]\nposix_permissions = true\nworkers = 1\n")
    assert settings.access_rules is not None
    settings.access_rules.write_text(RULES)
    first = run_sync(settings, root, "local", workers=1)
    assert first.added == 1
    p = payload_of(settings, "plan.md")
    assert p["allowed_groups"] == ["root", "users"]  # adm: no entry, other may not read
    assert p["denied_groups"] == ["user:daemon"]

    mtime = doc.stat().st_mtime_ns
    subprocess.run(["setfacl", "-x", "g:users", str(doc)], check=True)
    assert doc.stat().st_mtime_ns == mtime  # an ACL edit leaves the content's time alone
    second = run_sync(settings, root, "local", workers=1)
    assert second.permissions_updated == 1 and second.embedded == 0 and second.updated == 0
    assert payload_of(settings, "plan.md")["allowed_groups"] == ["root"]
