"""policies.readers.decide: the source's permissions, then the rules as an override layer;
names resolved through the directory; what cannot be evaluated gives nobody."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from core.errors import ConfigError
from policies import ntacl as N
from policies.access import AccessRules
from policies.readers import NtFacts, NtPolicy, can_read, decide

DOM = "S-1-5-21-11-22-33"
SIDS = {"hr": f"{DOM}-1107", "auditors": f"{DOM}-1200", "contractors": f"{DOM}-1201"}
ALICE, MALLORY = f"{DOM}-1103", f"{DOM}-1105"


class FakeDirectory:
    """A name -> SID map standing in for LDAP (the LDAP backend is tested against Samba)."""

    def principal_ids(self, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        found = {n: (n if N.is_sid(n) else SIDS[n]) for n in names if N.is_sid(n) or n in SIDS}
        return found, [n for n in names if n not in found]


RULES = AccessRules.from_mapping(
    {
        "default": ["everyone-local"],
        "rules": [
            {"path": "hr/drafts/**", "exclude": True},
            {"path": "hr/board/**", "groups": ["auditors"]},
            {"path": "hr/**", "add_groups": ["auditors"], "deny_groups": ["contractors"]},
            {"path": "ghost/**", "deny_groups": ["no-such-group"]},
            {"path": "typo/**", "add_groups": ["no-such-group"]},
        ],
    }
)
ACL = NtFacts(
    N.build_sd(
        N.BUILTIN_ADMINISTRATORS,
        None,
        [
            N.deny(MALLORY, N.FILE_ALL_ACCESS),
            N.allow(SIDS["hr"], N.READ_AND_EXECUTE, N.INHERITED_ACE),
            N.allow(N.BUILTIN_ADMINISTRATORS, N.FILE_ALL_ACCESS),
        ],
    )
)


def d(path: str, facts: NtFacts | None = ACL):  # type: ignore[no-untyped-def]
    return decide(RULES.match("share", path), facts, FakeDirectory(), NtPolicy())


def test_the_acl_decides_when_no_rule_matches() -> None:
    r = d("finance/budget.xlsx")
    assert r.allowed == (SIDS["hr"],) and r.denied == (MALLORY,)
    assert "the file's ACL decides" in r.lines[0]
    assert can_read(r, frozenset({SIDS["hr"], ALICE})) and not can_read(
        r, frozenset({SIDS["hr"], MALLORY})
    )


def test_rules_override_after_the_acl() -> None:
    added = d("hr/handbook.docx")
    assert set(added.allowed) == {SIDS["hr"], SIDS["auditors"]}
    assert set(added.denied) == {MALLORY, SIDS["contractors"]}
    replaced = d("hr/board/minutes.docx")
    assert replaced.allowed == (SIDS["auditors"],) and replaced.denied == (MALLORY,)  # deny stays
    assert d("hr/drafts/plan.docx").excluded


def test_without_file_permissions_the_default_applies() -> None:
    # a YAML-style directory (names are ids) and no ACL: the rules alone, as before
    class Names:
        def principal_ids(self, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
            return {n: n for n in names}, []

    r = decide(RULES.match("share", "misc/a.txt"), None, Names())
    assert r.allowed == ("everyone-local",) and r.denied == ()
    r = decide(RULES.match("share", "hr/a.txt"), None, Names())
    assert r.allowed == ("auditors", "everyone-local") and r.denied == ("contractors",)


def test_unknown_names_fail_closed() -> None:
    ghost = d("ghost/a.txt")
    assert ghost.allowed == () and ghost.failure and "cannot be resolved" in ghost.failure
    typo = d("typo/a.txt")  # an unknown added group grants nothing, the ACL still applies
    assert typo.allowed == (SIDS["hr"],) and typo.failure is None
    assert any("not in the directory" in line for line in typo.lines)


def test_unevaluable_acl_is_nobody_with_a_reason() -> None:
    broken = d("finance/x.txt", NtFacts(b"\x01\x00\x04\x80" + b"\x00" * 12 + b"\xff\x00\x00\x00"))
    assert broken.allowed == () and broken.failure and "cannot be evaluated" in broken.failure


def test_rule_validation() -> None:
    with pytest.raises(ConfigError, match="cannot be combined"):
        AccessRules.from_mapping({"rules": [{"path": "a/**", "exclude": True, "groups": ["x"]}]})
    with pytest.raises(ConfigError, match="'exclude' must be true or false"):
        AccessRules.from_mapping({"rules": [{"path": "a/**", "exclude": "yes"}]})
    with pytest.raises(ConfigError, match="needs 'groups'"):
        AccessRules.from_mapping({"rules": [{"path": "a/**", "classification": "x"}]})


def test_rules_only_download_check_honours_denies_and_excludes() -> None:
    assert RULES.allows("share", "hr/a.txt", frozenset({"auditors"}))
    assert not RULES.allows("share", "hr/a.txt", frozenset({"auditors", "contractors"}))
    assert not RULES.allows("share", "hr/drafts/a.txt", frozenset({"everyone-local"}))
