"""Who may read one file: the source's own permissions first, then the access rules.

The sync (to stamp ``allowed_groups``/``denied_groups`` on every chunk) and
``policies check-access`` (to explain it) call the same :func:`decide`, so what is explained is
what is enforced. Inputs:

- the file's *facts*: an SMB file's security descriptor (:class:`NtFacts`), a local file's POSIX
  permissions (:class:`PosixFacts`, when ``ingest.posix_permissions`` is on), or none;
- the first matching access rule (:class:`~policies.access.AccessMatch`);
- a resolver from names (rule groups, POSIX group and user names) to the principal ids the
  directory puts in a user's token: group names for the YAML directory, SIDs for LDAP/AD.

Order (docs/policies.md, "How a file's readers are decided"):

1. ``exclude`` -> never indexed;
2. base readers: NT ACL -> allowed and denied SIDs (:mod:`policies.ntacl`); else the rule's
   groups or the default, narrowed by the POSIX permissions when given
   (:mod:`policies.posixacl`);
3. the rule's ``groups`` replace an ACL's allowed readers (its denies stay), ``add_groups`` add,
   ``deny_groups`` deny;
4. names -> ids. A name the directory does not know grants nothing; a *denied* name it does
   not know makes the file readable by nobody (the deny could not be enforced).

What cannot be evaluated (a malformed descriptor, an entry type Enclave does not know) gives
a decision with ``failure`` set and nobody as reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from core.settings import SmbSettings
from policies import ntacl
from policies.access import AccessMatch
from policies.identity import USER_PREFIX
from policies.posixacl import PosixAcl, narrow


@dataclass(frozen=True)
class NtFacts:
    """An SMB file's self-relative security descriptor, as the server returned it."""

    raw: bytes
    kind: str = "ntacl"


@dataclass(frozen=True)
class PosixFacts:
    acl: PosixAcl
    kind: str = "posix"


Facts = NtFacts | PosixFacts


def facts_to_bytes(facts: Facts) -> tuple[str, bytes]:
    if isinstance(facts, NtFacts):
        return facts.kind, facts.raw
    return facts.kind, facts.acl.to_bytes()


def facts_from_bytes(kind: str, data: bytes) -> Facts:
    if kind == "ntacl":
        return NtFacts(data)
    if kind == "posix":
        return PosixFacts(PosixAcl.from_bytes(data))
    raise ValueError(f"unknown permission facts kind {kind!r}")


@dataclass(frozen=True)
class NtPolicy:
    """Which SIDs never count as readers (administrative accounts; docs/ingest.md)."""

    ignored_sids: frozenset[str] = ntacl.ADMINISTRATIVE_SIDS
    ignored_rids: frozenset[int] = ntacl.ADMINISTRATIVE_RIDS


class IdResolver(Protocol):
    def principal_ids(self, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """``(name -> principal id, names it does not know)``."""


def nt_policy_for(smb: SmbSettings, directory: IdResolver) -> NtPolicy:
    """Which SIDs are no readers: ``smb.ignored_reader_sids``/``_rids`` and, with
    ``smb.ignore_service_account``, the service account itself (found through the directory)."""
    sids = set(smb.ignored_reader_sids)
    if smb.ignore_service_account and smb.username:
        found, _ = directory.principal_ids([USER_PREFIX + smb.username])
        sids |= {sid for sid in found.values() if ntacl.is_sid(sid)}
    return NtPolicy(frozenset(sids), frozenset(smb.ignored_reader_rids))


@dataclass(frozen=True)
class Decision:
    allowed: tuple[str, ...]
    denied: tuple[str, ...]
    classification: str | None
    excluded: bool = False
    failure: str | None = None
    lines: tuple[str, ...] = ()
    nt: ntacl.NtReaders | None = None

    @property
    def nobody(self) -> bool:
        return not self.allowed


def _resolve(
    resolver: IdResolver, names: Iterable[str], lines: list[str], what: str
) -> tuple[set[str], list[str]]:
    wanted = [n for n in dict.fromkeys(names) if n]
    if not wanted:
        return set(), []
    found, unknown = resolver.principal_ids(wanted)
    for name in unknown:
        lines.append(f"{what} {name!r} is not in the directory")
    return {found[n] for n in wanted if n in found}, unknown


def decide(
    match: AccessMatch,
    facts: Facts | None,
    resolver: IdResolver,
    nt_policy: NtPolicy | None = None,
) -> Decision:
    """The readers of one file (module docstring)."""
    acl_source = isinstance(facts, NtFacts)
    lines = [match.explain(acl_source=acl_source)]
    cls = match.classification
    if match.path is None:
        return Decision((), (), cls, failure="the path escapes its source root", lines=tuple(lines))
    if match.exclude:
        return Decision((), (), cls, excluded=True, lines=tuple(lines))
    nt_readers: ntacl.NtReaders | None = None
    if isinstance(facts, NtFacts):
        policy = nt_policy or NtPolicy()
        try:
            sd = ntacl.parse_sd(facts.raw)
        except ntacl.UnevaluableAcl as exc:
            why = f"the security descriptor cannot be evaluated ({exc}): readable by nobody"
            return Decision((), (), cls, failure=why, lines=(*lines, why))
        nt_readers = ntacl.evaluate(
            sd, ignored_sids=policy.ignored_sids, ignored_rids=policy.ignored_rids
        )
        if nt_readers.note:
            lines.append(nt_readers.note)
        allowed, denied = set(nt_readers.allowed), set(nt_readers.denied)
        if match.replaces:
            allowed, _ = _resolve(resolver, match.groups, lines, "rule group")
    else:
        names = list(match.groups)
        denied_names: list[str] = []
        if isinstance(facts, PosixFacts):
            posix = narrow(facts.acl, names)
            lines += posix.reasons
            names, denied_names = list(posix.allowed), list(posix.denied)
        allowed, _ = _resolve(resolver, names, lines, "group")
        denied, unknown = _resolve(resolver, denied_names, lines, "denied principal")
        if unknown:
            why = "a denied principal cannot be resolved: readable by nobody"
            return Decision((), (), cls, failure=why, lines=(*lines, why))
    added, _ = _resolve(resolver, match.add_groups, lines, "added group")
    extra_deny, unknown = _resolve(resolver, match.deny_groups, lines, "denied group")
    if unknown:
        why = "a rule's denied group cannot be resolved: readable by nobody"
        return Decision((), (), cls, failure=why, lines=(*lines, why), nt=nt_readers)
    allowed |= added
    denied |= extra_deny
    return Decision(
        tuple(sorted(allowed)),
        tuple(sorted(denied)),
        cls,
        lines=tuple(lines),
        nt=nt_readers,
    )


def can_read(decision: Decision, token: frozenset[str]) -> bool:
    """The index's filter in one line: some allowed id in the token and no denied one."""
    return bool(set(decision.allowed) & token) and not set(decision.denied) & token
