"""Access rules: which groups may read a file, and how it is classified.

One YAML file used by ingest (to stamp ``allowed_groups``/``denied_groups`` on each chunk) and
by ``policies check-access``::

    default: [everyone]              # files no rule matches (omit or [] -> nobody)
    default_classification: internal
    rules:                           # first match wins: put the specific rules first
      - path: "hr/confidential/**"
        groups: [hr-managers]
        classification: confidential
      - path: "legal/drafts/**"
        exclude: true                # never index these files
      - path: "projects/**"
        add_groups: [auditors]       # readers of the share's ACL, plus auditors
        deny_groups: [contractors]   # ... minus anyone in contractors
      - path: "finance/**"
        source: shared               # optional: only files of this synced source
        groups: [finance]

Two kinds of sources take the rules differently (docs/policies.md, "Access rules"):

- a source without permissions of its own (a local tree) starts from ``default``; a matching
  rule's ``groups`` replace it;
- a source whose files carry ACLs (an SMB share; NT ACLs decide) starts from the file's
  readers; the rules are an override layer after them: ``exclude``, ``groups`` (replace the
  ACL's readers; its denies stay), ``add_groups``, ``deny_groups``; ``default`` is not used.

Deny always wins: a reader in a denied group does not see the file, whatever grants it.

Globs match the path relative to the source root, with ``/`` separators, case-sensitive:
``*`` and ``?`` stay inside one directory level, ``**`` spans any number of levels (``hr/**``
is everything below ``hr/``; ``**/*.pdf`` is a PDF at any depth; ``*.pdf`` only at the top),
``[abc]``/``[!abc]`` are character classes.

Fail closed: a missing rules file grants nothing to anybody (with a warning the CLIs show), and
a file no rule matches gets the ``default`` groups, which are empty unless configured.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError

_TOP_KEYS = {"default", "default_classification", "rules"}
_RULE_KEYS = {
    "path",
    "groups",
    "add_groups",
    "deny_groups",
    "exclude",
    "source",
    "classification",
    "description",
}
_DECIDING_KEYS = ("groups", "add_groups", "deny_groups", "exclude")


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile an access-rule glob (see module doc) to an anchored regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            at_start = i == 0 or pattern[i - 1] == "/"
            if at_start and pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("(?!/)[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def normalize_path(rel_path: str) -> str | None:
    """Canonical ``a/b/c.txt`` form, or ``None`` for a path escaping its root (no access)."""
    p = rel_path.replace("\\", "/").strip()
    p = posixpath.normpath(p) if p else ""
    p = p.lstrip("/")
    if p in ("", ".") or p == ".." or p.startswith("../"):
        return None
    return p


@dataclass(frozen=True)
class AccessRule:
    index: int
    path: str
    groups: tuple[str, ...] | None  # None: the rule does not replace the readers
    source: str | None
    classification: str | None
    description: str | None
    regex: re.Pattern[str]
    add_groups: tuple[str, ...] = ()
    deny_groups: tuple[str, ...] = ()
    exclude: bool = False

    def matches(self, source: str, rel_path: str) -> bool:
        if self.source is not None and self.source != source:
            return False
        return self.regex.match(rel_path) is not None


@dataclass(frozen=True)
class AccessMatch:
    """Why a file gets its groups: the matching rule (``None`` = the default applied).

    ``groups`` are the readers for a source without ACLs of its own (the rule's ``groups``, else
    the default); ``replaces`` says whether the rule sets the readers of an ACL source too."""

    groups: list[str]
    classification: str | None
    rule: AccessRule | None
    path: str | None
    add_groups: tuple[str, ...] = ()
    deny_groups: tuple[str, ...] = ()
    exclude: bool = False

    @property
    def replaces(self) -> bool:
        return self.rule is not None and self.rule.groups is not None

    def explain(self, *, acl_source: bool = False) -> str:
        """One line: which rule (or the default, or the file's ACL) decides, and how."""
        who = ", ".join(self.groups) if self.groups else "nobody"
        if self.path is None:
            return "path escapes its source root: readable by nobody"
        if self.rule is None:
            if acl_source:
                return f"no rule matches {self.path!r}: the file's ACL decides"
            return f"no rule matches {self.path!r}: default applies, readable by {who}"
        src = f" (source {self.rule.source})" if self.rule.source else ""
        head = f"rule #{self.rule.index + 1} {self.rule.path!r}{src} matches"
        if self.exclude:
            return f"{head}: never indexed (exclude)"
        parts = []
        if self.replaces:
            parts.append(
                f"readable by {who}" + (" instead of the ACL's readers" if acl_source else "")
            )
        elif not acl_source:
            parts.append(f"default applies, readable by {who}")
        if self.add_groups:
            parts.append("adds " + ", ".join(self.add_groups))
        if self.deny_groups:
            parts.append("denies " + ", ".join(self.deny_groups))
        if not parts:
            parts.append("the file's ACL decides" if acl_source else f"readable by {who}")
        return f"{head}: " + "; ".join(parts)


def _groups(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
        raise ConfigError(f"{where} must be a list of group names")
    return tuple(dict.fromkeys(value))


class AccessRules:
    """Parsed access rules; build with :meth:`load`."""

    def __init__(
        self,
        rules: list[AccessRule],
        default: tuple[str, ...],
        default_classification: str | None,
        version: str,
        source_file: Path | None,
        warning: str | None = None,
    ) -> None:
        self.rules = rules
        self.default = default
        self.default_classification = default_classification
        self.version = version
        self.source_file = source_file
        self.warning = warning

    @classmethod
    def load(cls, path: Path | str | None) -> AccessRules:
        if path is None:
            return cls._closed(
                None,
                "no access rules file configured (set access_rules): "
                "no document is readable by anyone",
            )
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls._closed(
                p, f"access rules file {p} not found: no document is readable by anyone"
            )
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"access rules file {p} is not valid YAML: {exc}") from exc
        return cls.from_mapping(data, p)

    @classmethod
    def _closed(cls, path: Path | None, warning: str) -> AccessRules:
        version = hashlib.sha256(b"access-rules:none").hexdigest()
        return cls([], (), None, version, path, warning)

    @classmethod
    def from_mapping(cls, data: Any, source_file: Path | None = None) -> AccessRules:
        where = f"access rules file {source_file}" if source_file else "access rules"
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: top level must be a mapping (default, rules)")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}"
            )
        default = _groups(data.get("default"), f"{where}: 'default'")
        default_cls = data.get("default_classification")
        if default_cls is not None and not isinstance(default_cls, str):
            raise ConfigError(f"{where}: 'default_classification' must be a string")
        raw_rules = data.get("rules") or []
        if not isinstance(raw_rules, list):
            raise ConfigError(f"{where}: 'rules' must be a list")
        rules: list[AccessRule] = []
        for i, raw in enumerate(raw_rules):
            rw = f"{where}: rule #{i + 1}"
            if not isinstance(raw, dict):
                raise ConfigError(f"{rw} must be a mapping with 'path' and 'groups'")
            bad = set(raw) - _RULE_KEYS
            if bad:
                raise ConfigError(
                    f"{rw} has unknown key(s) {sorted(bad)}; allowed: {sorted(_RULE_KEYS)}"
                )
            pattern = raw.get("path")
            if not isinstance(pattern, str) or not pattern.strip():
                raise ConfigError(f"{rw} needs a 'path' glob")
            if not any(k in raw for k in _DECIDING_KEYS):
                raise ConfigError(
                    f"{rw} ({pattern!r}) needs 'groups' (use [] for nobody), 'add_groups', "
                    "'deny_groups' or 'exclude: true'"
                )
            for key in ("source", "classification", "description"):
                if raw.get(key) is not None and not isinstance(raw[key], str):
                    raise ConfigError(f"{rw}: '{key}' must be a string")
            exclude = raw.get("exclude", False)
            if not isinstance(exclude, bool):
                raise ConfigError(f"{rw}: 'exclude' must be true or false")
            if exclude and any(k in raw for k in ("groups", "add_groups", "deny_groups")):
                raise ConfigError(f"{rw}: 'exclude: true' cannot be combined with groups")
            norm = pattern.strip().replace("\\", "/").lstrip("/")
            rules.append(
                AccessRule(
                    index=i,
                    path=norm,
                    groups=_groups(raw.get("groups"), f"{rw}: 'groups'")
                    if "groups" in raw
                    else None,
                    source=raw.get("source"),
                    classification=raw.get("classification"),
                    description=raw.get("description"),
                    regex=glob_to_regex(norm),
                    add_groups=_groups(raw.get("add_groups"), f"{rw}: 'add_groups'"),
                    deny_groups=_groups(raw.get("deny_groups"), f"{rw}: 'deny_groups'"),
                    exclude=exclude,
                )
            )
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return cls(rules, default, default_cls, version, source_file)

    def match(self, source: str, rel_path: str) -> AccessMatch:
        path = normalize_path(rel_path)
        if path is None:
            return AccessMatch([], None, None, None)
        for rule in self.rules:
            if rule.matches(source, path):
                cls_ = rule.classification or self.default_classification
                groups = rule.groups if rule.groups is not None else self.default
                return AccessMatch(
                    sorted(groups),
                    cls_,
                    rule,
                    path,
                    add_groups=rule.add_groups,
                    deny_groups=rule.deny_groups,
                    exclude=rule.exclude,
                )
        return AccessMatch(sorted(self.default), self.default_classification, None, path)

    def groups_for(self, source: str, rel_path: str) -> list[str]:
        """Groups that may read ``rel_path`` of a source without ACLs; ``[]`` means nobody
        (an excluded path and a denied group count: they leave nobody or fewer readers)."""
        m = self.match(source, rel_path)
        if m.exclude:
            return []
        return sorted(set(m.groups) | set(m.add_groups))

    def allows(self, source: str, rel_path: str, token: frozenset[str]) -> bool:
        """Whether a user with ``token`` may read a file of a source without ACLs (rules only:
        the UI's download check); a denied group wins."""
        m = self.match(source, rel_path)
        if m.exclude or set(m.deny_groups) & token:
            return False
        return bool((set(m.groups) | set(m.add_groups)) & token)

    def classification_for(self, source: str, rel_path: str) -> str | None:
        return self.match(source, rel_path).classification
