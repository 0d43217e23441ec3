"""Who may read a file, as the sync stamps it on the file's chunks.

The decision itself is :func:`policies.readers.decide` (shared with ``policies check-access``):
the source's own permissions (an SMB file's NT ACL; a local file's POSIX permissions when
``ingest.posix_permissions`` is on), then the access rules as an override layer, with names
resolved to the ids the directory puts in users' tokens. This module turns it into the
:class:`Access` a file row and its points carry, and caches decisions: thousands of files
inheriting one folder's ACL share one descriptor, so each distinct (rule, descriptor) pair is
decided once per sync.

A change of any input alone (an ACL edit, a rules edit, a group resolving to another id) is a
permission change: the sync rewrites ``allowed_groups`` / ``denied_groups`` /
``classification`` on the file's points (``set_payload``), without parsing or embedding.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ingest.sources.base import SourceEntry
from policies.access import AccessRules
from policies.readers import Decision, IdResolver, NtPolicy, decide, facts_to_bytes

EXCLUDED = "ingest.excluded"
ACL_UNEVALUABLE = "ingest.acl_unevaluable"
_CACHE_MAX = 4096


@dataclass(frozen=True)
class Access:
    groups: tuple[str, ...]
    classification: str | None
    denied: tuple[str, ...] = ()
    excluded: bool = False
    failure_code: str | None = None  # set: the file is not indexed (fail closed), see message
    failure: str | None = None
    facts: tuple[str, bytes] | None = None  # the permissions decided from (check-access)
    facts_sha: str | None = None

    def same_readers(
        self, groups: tuple[str, ...], denied: tuple[str, ...], cls: str | None
    ) -> bool:
        return self.groups == groups and self.denied == denied and self.classification == cls


class PermissionResolver:
    """Computes :class:`Access` for the files of one source."""

    def __init__(
        self,
        rules: AccessRules,
        source: str,
        *,
        resolver: IdResolver,
        nt_policy: NtPolicy | None = None,
    ) -> None:
        self.rules = rules
        self.source = source
        self.resolver = resolver
        self.nt_policy = nt_policy or NtPolicy()
        self._cache: dict[tuple[int, str, bytes], Decision] = {}

    def access(self, entry: SourceEntry) -> Access:
        match = self.rules.match(self.source, entry.rel_path)
        if entry.facts_error is not None and not match.exclude:
            code, message = entry.facts_error
            return Access((), match.classification, failure_code=code, failure=message)
        facts = facts_to_bytes(entry.facts) if entry.facts is not None else None
        rule = match.rule.index if match.rule is not None else -1
        key = (rule, *(facts or ("", b"")))
        decision = self._cache.get(key) if match.path is not None else None
        if decision is None:
            decision = decide(match, entry.facts, self.resolver, self.nt_policy)
            if match.path is not None:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[key] = decision
        sha = hashlib.sha256(facts[0].encode() + b"\0" + facts[1]).hexdigest() if facts else None
        if decision.excluded:
            return Access((), decision.classification, excluded=True, facts=facts, facts_sha=sha)
        if decision.failure is not None:
            return Access(
                (),
                decision.classification,
                failure_code=ACL_UNEVALUABLE,
                failure=decision.failure,
                facts=facts,
                facts_sha=sha,
            )
        return Access(
            decision.allowed,
            decision.classification,
            decision.denied,
            facts=facts,
            facts_sha=sha,
        )
