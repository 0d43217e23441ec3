"""The usage policy file: allowed roles, input cap, limits and the acceptable-use screen.

See ``policies/default_usage.yaml`` (shipped default) and docs/policies.md. Limits combine per
field: a user's own entry wins; otherwise the most generous value among the groups they belong
to that set the field (``null`` = unlimited); otherwise the default. Overlapping group
memberships are entitlements (the larger limit wins), a restriction on one person goes in their
user entry.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError
from policies.identity import ROLES, Principal
from policies.screen_text import screen_views

SHIPPED_USAGE = Path(__file__).with_name("default_usage.yaml")
LIMIT_FIELDS = ("requests_per_day", "tokens_per_day", "requests_per_minute")
_TOP = {"allowed_roles", "max_input_chars", "limits", "acceptable_use"}
_AUP = {"screen_questions", "screen_answers", "categories"}
_CAT = {"id", "description", "patterns", "message"}
_MISSING = object()


@dataclass(frozen=True)
class Limits:
    requests_per_day: int | None
    tokens_per_day: int | None
    requests_per_minute: int | None


@dataclass(frozen=True)
class AupCategory:
    id: str
    description: str
    patterns: tuple[re.Pattern[str], ...]
    message: str | None


@dataclass(frozen=True)
class AupHit:
    category: AupCategory
    pattern: str


def _limit_map(raw: Any, where: str) -> dict[str, int | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - set(LIMIT_FIELDS):
        raise ConfigError(f"{where} must be a mapping of {list(LIMIT_FIELDS)}")
    for key, value in raw.items():
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ConfigError(f"{where}.{key} must be a non-negative integer or null (unlimited)")
    return dict(raw)


class UsagePolicy:
    def __init__(self, data: Any, path: Path | None, version: str) -> None:
        where = f"usage policy {path}" if path else "usage policy"
        if not isinstance(data, dict) or set(data) - _TOP:
            raise ConfigError(f"{where}: top-level keys must be among {sorted(_TOP)}")
        self.path = path
        self.version = version
        self.data: dict[str, Any] = data
        roles = data.get("allowed_roles", sorted(ROLES))
        if not isinstance(roles, list) or set(roles) - ROLES:
            raise ConfigError(f"{where}: allowed_roles must list roles from {sorted(ROLES)}")
        self.allowed_roles = frozenset(roles)
        cap = data.get("max_input_chars", 4000)
        if not isinstance(cap, int) or cap < 1:
            raise ConfigError(f"{where}: max_input_chars must be a positive integer")
        self.max_input_chars = cap
        limits = data.get("limits") or {}
        if not isinstance(limits, dict) or set(limits) - {"default", "groups", "users"}:
            raise ConfigError(f"{where}: limits must have only default, groups, users")
        self.default = _limit_map(limits.get("default"), f"{where}: limits.default")
        self.groups = {
            str(g): _limit_map(v, f"{where}: limits.groups.{g}")
            for g, v in (limits.get("groups") or {}).items()
        }
        self.users = {
            str(u): _limit_map(v, f"{where}: limits.users.{u}")
            for u, v in (limits.get("users") or {}).items()
        }
        aup = data.get("acceptable_use") or {}
        if not isinstance(aup, dict) or set(aup) - _AUP:
            raise ConfigError(f"{where}: acceptable_use keys must be among {sorted(_AUP)}")
        self.screen_questions = bool(aup.get("screen_questions", True))
        self.screen_answers = bool(aup.get("screen_answers", True))
        self.categories = [self._category(c, where) for c in aup.get("categories") or []]

    @staticmethod
    def _category(raw: Any, where: str) -> AupCategory:
        if not isinstance(raw, dict) or set(raw) - _CAT or "id" not in raw:
            raise ConfigError(
                f"{where}: each acceptable_use category needs 'id' and only keys {sorted(_CAT)}"
            )
        cid = str(raw["id"])
        pats = raw.get("patterns") or []
        compiled = []
        for p in pats:
            try:
                compiled.append(re.compile(str(p), re.IGNORECASE))
            except re.error as exc:
                raise ConfigError(
                    f"{where}: category '{cid}' pattern {p!r} is invalid: {exc}"
                ) from exc
        return AupCategory(
            cid, str(raw.get("description") or cid), tuple(compiled), raw.get("message")
        )

    @classmethod
    def load(cls, path: Path | str | None = None) -> UsagePolicy:
        p = Path(path) if path is not None else SHIPPED_USAGE
        try:
            raw = p.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigError(f"usage policy file not found: {p}") from exc
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"usage policy {p} is not valid YAML: {exc}") from exc
        return cls(data, p, hashlib.sha256(raw).hexdigest())

    def with_limits(
        self,
        default: dict[str, int | None],
        groups: dict[str, dict[str, int | None]],
        users: dict[str, dict[str, int | None]],
    ) -> dict[str, Any]:
        """This policy's data with new limits (everything else kept), validated."""
        data = dict(self.data)
        data["limits"] = {"default": dict(default), "groups": dict(groups), "users": dict(users)}
        UsagePolicy(data, self.path, "unsaved")  # raises ConfigError naming a bad value
        return data

    def limits_for(self, principal: Principal) -> Limits:
        values: dict[str, int | None] = {}
        own = self.users.get(principal.user_id, {})
        for name in LIMIT_FIELDS:
            value: Any = own.get(name, _MISSING)
            if value is _MISSING:
                group_values = [
                    self.groups[g][name]
                    for g in principal.groups
                    if g in self.groups and name in self.groups[g]
                ]
                if group_values:
                    value = (
                        None
                        if None in group_values
                        else max(v for v in group_values if v is not None)
                    )
                else:
                    value = self.default.get(name)
            values[name] = value
        return Limits(**values)

    def screen(self, text: str) -> AupHit | None:
        """The first category whose pattern matches ``text`` or one of its normalised views
        (:func:`policies.screen_text.screen_views`: look-alikes, invisible characters, leet)."""
        views = screen_views(text)
        for cat in self.categories:
            for pat in cat.patterns:
                if any(pat.search(view) for view in views):
                    return AupHit(cat, pat.pattern)
        return None


def dump_usage(data: dict[str, Any]) -> bytes:
    """The usage policy as YAML, as an administrator's change writes it."""
    header = "# Usage policy, last changed on the admin page (Models and quotas).\n"
    return (header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).encode()
