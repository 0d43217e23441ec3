from __future__ import annotations

import grp
import os

from ingest.sync.permissions import PermissionResolver, group_name, narrow_by_mode
from policies.access import AccessRules

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
            {"path": "hr/**", "groups": ["hr", "root-group"]},
            {"path": "public/**", "groups": []},
        ],
    }
)


def test_rules_only_when_posix_is_off() -> None:
    r = PermissionResolver(RULES, "share", posix=False)
    assert r.access("hr/confidential/pay.xlsx", 0o600, 0).groups == ("hr-managers",)
    assert r.access("hr/confidential/pay.xlsx", 0o600, 0).classification == "confidential"
    assert r.access("hr/leave.md", 0o644, 0).groups == ("hr", "root-group")
    assert r.access("misc/x.md", 0o600, 0).groups == ("staff",)
    assert r.access("misc/x.md", 0o600, 0).classification == "internal"
    assert r.access("public/x.md", 0o644, 0).groups == ()


def test_posix_bits_only_narrow() -> None:
    gid = os.getgid()
    owner_group = group_name(gid)
    groups = ("hr", owner_group)
    assert narrow_by_mode(groups, 0o644, gid) == groups  # world-readable: rules stand
    assert narrow_by_mode(groups, 0o640, gid) == (owner_group,)  # group-readable: owner group
    assert narrow_by_mode(("hr",), 0o640, gid) == ()  # owner group not granted by rules
    assert narrow_by_mode(groups, 0o600, gid) == ()  # owner only: nobody


def test_posix_resolver_uses_owner_group_name() -> None:
    gid = os.getgid()
    name = grp.getgrgid(gid).gr_name
    rules = AccessRules.from_mapping({"rules": [{"path": "**", "groups": [name, "other"]}]})
    r = PermissionResolver(rules, "share", posix=True)
    assert r.access("a.md", 0o644, gid).groups == tuple(sorted([name, "other"]))
    assert r.access("a.md", 0o640, gid).groups == (name,)
    assert r.access("a.md", 0o600, gid).groups == ()


def test_unknown_gid_is_its_number() -> None:
    assert group_name(987654) == "987654"
