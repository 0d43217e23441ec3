"""The access-rules file as an override layer on a synced tree: "never index X" removes what
was indexed, "add group Y" / "deny group Z" are permission-only changes."""

from __future__ import annotations

from pathlib import Path

from ingest.sync.run import run_sync
from tests.ingest.conftest import RULES_YAML, dump_index, settings_for, write_docs


def payloads(settings: object) -> dict[str, dict[str, object]]:
    points = [p["payload"] for p in dump_index(settings).values()]  # type: ignore[arg-type]
    return {str(p["path"]): p for p in points}


def test_exclude_add_and_deny_rules(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    write_docs(root)
    settings = settings_for(tmp_path, extra="[ingest]\nworkers = 1\n")
    assert settings.access_rules is not None
    first = run_sync(settings, root, "handbook", workers=1)
    assert first.added == 6
    assert "hr/confidential/salaries.md" in payloads(settings)

    settings.access_rules.write_text(
        RULES_YAML.replace(
            "rules:\n",
            'rules:\n  - path: "hr/confidential/**"\n    exclude: true\n'
            '  - path: "it/**"\n    add_groups: [auditors]\n    deny_groups: [contractors]\n',
            1,
        )
    )
    second = run_sync(settings, root, "handbook", workers=1)
    assert second.embedded == 0 and second.added == second.updated == 0
    assert [(i.path, i.code) for i in second.skipped] == [
        ("hr/confidential/salaries.md", "ingest.excluded")
    ]
    after = payloads(settings)
    assert "hr/confidential/salaries.md" not in after  # removed, not just hidden
    for path in ("it/vpn.md", "it/passwords.txt"):
        assert after[path]["allowed_groups"] == ["auditors", "everyone"]
        assert after[path]["denied_groups"] == ["contractors"]
    assert second.permissions_updated == 2

    third = run_sync(settings, root, "handbook", workers=1)  # nothing left to do
    assert third.permissions_updated == 0 and third.skipped_count == 0 and third.embedded == 0
