"""Directory file and access rules: loading, errors, glob semantics, first match wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from policies.access import AccessRules, glob_to_regex
from policies.directory import Directory
from tests.policies.conftest import DIRECTORY_YAML, RULES_YAML


def _rules(tmp_path: Path, text: str = RULES_YAML) -> AccessRules:
    f = tmp_path / "access.yaml"
    f.write_text(text)
    return AccessRules.load(f)


def test_directory_get_known_unknown_disabled(tmp_path: Path) -> None:
    f = tmp_path / "dir.yaml"
    f.write_text(DIRECTORY_YAML)
    d = Directory.load(f)
    alice = d.get("alice")
    assert alice is not None
    assert alice.groups == {"hr", "everyone"} and alice.roles == {"employee"}
    bob = d.get("bob")
    assert bob is not None and bob.roles == {"employee", "admin"}
    assert d.get("nobody") is None
    assert d.get("dave") is None  # disabled
    entry = d.entry("dave")
    assert entry is not None and entry.disabled
    assert len(d) == 5


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("users: {x: {groups: [a], rolez: [admin]}}", "rolez"),
        ("users: {x: {roles: [superuser]}}", "superuser"),
        ("people: {}", "people"),
        ("users: {x: {groups: a}}", "users.x.groups"),
        ("users: [", "not valid YAML"),
    ],
)
def test_directory_errors_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "dir.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        Directory.load(f)


def test_directory_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Directory.load(tmp_path / "missing.yaml")


def test_first_match_wins_specific_first(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    assert rules.groups_for("default", "hr/confidential/salaries.xlsx") == ["hr-managers"]
    assert rules.classification_for("default", "hr/confidential/x.pdf") == "confidential"
    assert rules.groups_for("default", "hr/handbook.pdf") == ["hr"]
    assert rules.classification_for("default", "hr/handbook.pdf") == "internal"
    assert rules.groups_for("default", "general/canteen.md") == ["everyone"]


def test_order_matters_general_rule_first_shadows_specific(tmp_path: Path) -> None:
    text = (
        "rules:\n"
        "  - {path: 'hr/**', groups: [hr]}\n"
        "  - {path: 'hr/confidential/**', groups: [hr-managers]}\n"
    )
    rules = _rules(tmp_path, text)
    # the general rule comes first, so it wins: this is why specific rules go first
    assert rules.groups_for("s", "hr/confidential/x.pdf") == ["hr"]
    assert rules.groups_for("s", "other.txt") == []  # no default -> nobody


def test_source_restricted_rule(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    assert rules.groups_for("shared", "finance/q3.xlsx") == ["finance"]
    assert rules.groups_for("other", "finance/q3.xlsx") == ["everyone"]


def test_glob_semantics() -> None:
    def m(pat: str, path: str) -> bool:
        return glob_to_regex(pat).match(path) is not None

    assert m("hr/**", "hr/a.txt") and m("hr/**", "hr/x/y/z.txt")
    assert not m("hr/**", "hrx/a.txt") and not m("hr/**", "other/hr/a.txt")
    assert m("hr/*", "hr/a.txt") and not m("hr/*", "hr/x/a.txt")  # * stays in one level
    assert m("*.pdf", "a.pdf") and not m("*.pdf", "dir/a.pdf")
    assert m("**/*.pdf", "a.pdf") and m("**/*.pdf", "d/e/a.pdf")
    assert m("**/secret/**", "secret/a") and m("**/secret/**", "x/y/secret/a")
    assert m("report-??.md", "report-01.md") and not m("report-?.md", "report-/.md")
    assert m("[ab]*.txt", "apple.txt") and not m("[!ab]*.txt", "apple.txt")
    assert not m("hr/**", "HR/a.txt")  # case-sensitive
    assert m("a.b", "a.b") and not m("a.b", "axb")  # dots are literal


def test_paths_are_normalized_and_escapes_fail_closed(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    assert rules.groups_for("s", "hr\\sub\\file.txt") == ["hr"]
    assert rules.groups_for("s", "./hr/file.txt") == ["hr"]
    assert rules.groups_for("s", "/hr/file.txt") == ["hr"]
    assert rules.groups_for("s", "../hr/file.txt") == []
    assert rules.groups_for("s", "general/../hr/confidential/x") == ["hr-managers"]


def test_missing_file_fails_closed_with_warning(tmp_path: Path) -> None:
    rules = AccessRules.load(tmp_path / "nope.yaml")
    assert rules.groups_for("s", "anything.txt") == []
    assert rules.warning is not None and "nope.yaml" in rules.warning
    none = AccessRules.load(None)
    assert none.groups_for("s", "x") == [] and none.warning


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("default: [everyone]\nrulez: []\n", "rulez"),
        ("rules:\n  - {path: 'a/**', groups: [x], grups: [y]}\n", "grups"),
        ("rules:\n  - {path: 'a/**'}\n", "needs 'groups'"),
        ("rules:\n  - {groups: [x]}\n", "needs a 'path'"),
        ("rules: [\n", "not valid YAML"),
        ("default: everyone\n", "'default' must be a list"),
    ],
)
def test_invalid_rules_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        _rules(tmp_path, text)


def test_version_tracks_content_not_formatting(tmp_path: Path) -> None:
    a = _rules(tmp_path, "default: [everyone]\nrules: [{path: 'hr/**', groups: [hr]}]\n")
    b = _rules(tmp_path, "rules:\n  - groups: [hr]\n    path: hr/**\ndefault:\n  - everyone\n")
    c = _rules(tmp_path, "default: [everyone]\nrules: [{path: 'hr/**', groups: [hr2]}]\n")
    assert a.version == b.version != c.version
    assert len(a.version) == 64


def test_explain_names_the_rule(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    assert "rule #2 'hr/**'" in rules.match("s", "hr/a.txt").explain()
    assert "default applies" in rules.match("s", "misc/a.txt").explain()


def _doc_yaml(heading: str) -> str:
    doc = (Path(__file__).parents[2] / "docs" / "policies.md").read_text()
    section = doc.split(heading, 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_documented_examples_behave_as_documented(tmp_path: Path) -> None:
    rules = _rules(tmp_path, _doc_yaml("## Access rules file"))
    assert rules.groups_for("any", "hr/confidential/pay.xlsx") == ["hr-managers"]
    assert rules.groups_for("any", "hr/leave.docx") == ["hr"]
    assert rules.groups_for("any", "hr/certs/server.key") == []
    assert rules.groups_for("shared", "engineering/a.md") == ["engineering"]
    assert rules.groups_for("other", "engineering/a.md") == ["everyone"]
    assert rules.groups_for("any", "canteen/menu.pdf") == ["everyone"]
    f = tmp_path / "dir.yaml"
    f.write_text(_doc_yaml("## Directory file"))
    d = Directory.load(f)
    hanna = d.get("hanna")
    assert hanna is not None and hanna.roles == {"employee"} and d.get("dave") is None
