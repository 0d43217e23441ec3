"""The sync's reader decision for local trees: rules, POSIX mode bits and POSIX ACLs."""

from __future__ import annotations

import os

from ingest.sources.base import SourceEntry
from ingest.sync.permissions import EXCLUDED, PermissionResolver
from policies.access import AccessRules
from policies.directory import Directory
from policies.posixacl import AclEntry, PosixAcl, group_name, minimal_acl
from policies.readers import PosixFacts

RULES = AccessRules.from_mapping(
    {
        "default": ["staff"],
        "default_classification": "internal",
        "rules": [
            {
                "path": "hr/confidential/**",
                "groups": ["hr-managers"],
                "classification": "confidential",
            },
            {"path": "hr/drafts/**", "exclude": True},
            {"path": "hr/**", "groups": ["hr", "root-group"]},
            {"path": "public/**", "groups": []},
            {"path": "audit/**", "add_groups": ["auditors"], "deny_groups": ["interns"]},
        ],
    }
)
YAML = Directory.empty()


def entry(rel: str, mode: int = 0o644, gid: int = 0, acl: PosixAcl | None = None) -> SourceEntry:
    facts = PosixFacts(acl) if acl is not None else None
    return SourceEntry(rel, 10, 1, 1, mode=mode, uid=0, gid=gid, facts=facts)


def test_rules_only_for_a_tree_without_permissions() -> None:
    r = PermissionResolver(RULES, "share", resolver=YAML)
    assert r.access(entry("hr/confidential/pay.xlsx")).groups == ("hr-managers",)
    assert r.access(entry("hr/confidential/pay.xlsx")).classification == "confidential"
    assert r.access(entry("hr/leave.md")).groups == ("hr", "root-group")
    assert r.access(entry("misc/x.md")).groups == ("staff",)
    assert r.access(entry("misc/x.md")).classification == "internal"
    assert r.access(entry("public/x.md")).groups == ()


def test_override_layer_exclude_add_and_deny() -> None:
    r = PermissionResolver(RULES, "share", resolver=YAML)
    excluded = r.access(entry("hr/drafts/plan.docx"))
    assert excluded.excluded and excluded.groups == ()
    audit = r.access(entry("audit/2026.md"))
    assert audit.groups == ("auditors", "staff")  # the default plus the added group
    assert audit.denied == ("interns",)


def _acl(mode: int, gid: int, extra: list[AclEntry]) -> PosixAcl:
    base = list(minimal_acl(mode))
    return PosixAcl(mode, 0, gid, tuple(base + extra), bool(extra))


def test_mode_bits_only_narrow() -> None:
    gid = os.getgid()
    owner_group = group_name(gid)
    rules = AccessRules.from_mapping({"rules": [{"path": "**", "groups": ["hr", owner_group]}]})
    r = PermissionResolver(rules, "share", resolver=YAML)

    def groups(mode: int) -> tuple[str, ...]:
        return r.access(entry("a.md", mode, gid, _acl(mode, gid, []))).groups

    assert groups(0o644) == tuple(sorted(["hr", owner_group]))  # world-readable: rules stand
    assert groups(0o640) == (owner_group,)  # group-readable: only the owning group
    assert groups(0o600) == ()  # owner only: nobody
    # a group without read while other may: its members are denied, not let through by other
    hidden = r.access(entry("a.md", 0o604, gid, _acl(0o604, gid, [])))
    assert hidden.groups == ("hr",) and owner_group in hidden.denied


def test_unknown_gid_is_its_number() -> None:
    assert group_name(987654) == "987654"


def test_excluded_code_is_a_skip() -> None:
    from ingest.sync.plan import status_for

    assert status_for(EXCLUDED) == "skipped"
