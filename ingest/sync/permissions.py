"""Who may read a file: access rules, optionally narrowed by the file's POSIX permissions.

Combination rule (documented in docs/ingest.md):

1. The access-rules file decides first (``policies.access.AccessRules``: first matching glob
   wins, else the default; no rule and no default -> nobody).
2. With ``ingest.posix_permissions = true`` the file's mode bits can only *narrow* that list,
   never widen it (fail closed):

   - readable by others (``o+r``): the rule groups stand;
   - else readable by its group (``g+r``): only the rule groups that equal the file's owner
     group name survive (the rule groups intersected with ``{owner group}``);
   - else (owner-only, e.g. ``0600``): nobody.

   So a ``chmod 600`` on a sensitive file removes it from every user's answers without editing
   the rules, and a group-private file stays with that group if the rules grant the group.

A change of either input alone is a permission change: the sync rewrites ``allowed_groups`` /
``classification`` on the file's points (``set_payload``), without parsing or embedding.
"""

from __future__ import annotations

import grp
import stat
from dataclasses import dataclass
from functools import lru_cache

from policies.access import AccessRules


@dataclass(frozen=True)
class Access:
    groups: tuple[str, ...]
    classification: str | None


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    """Name of a POSIX group id (its number as text when the system does not know it)."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def narrow_by_mode(groups: tuple[str, ...], mode: int, gid: int) -> tuple[str, ...]:
    """Apply rule 2 of the module docstring to ``groups``."""
    if mode & stat.S_IROTH:
        return groups
    if mode & stat.S_IRGRP:
        owner_group = group_name(gid)
        return tuple(g for g in groups if g == owner_group)
    return ()


class PermissionResolver:
    """Computes :class:`Access` for the files of one source."""

    def __init__(self, rules: AccessRules, source: str, *, posix: bool) -> None:
        self.rules = rules
        self.source = source
        self.posix = posix

    def access(self, rel_path: str, mode: int, gid: int) -> Access:
        match = self.rules.match(self.source, rel_path)
        groups = tuple(sorted(set(match.groups)))
        if self.posix:
            groups = narrow_by_mode(groups, mode, gid)
        return Access(groups=groups, classification=match.classification)
