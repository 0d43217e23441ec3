"""Who is asking: the :class:`Principal`, Enclave's roles, and the OIDC claim mapping.

Local accounts (passwords in the database) live in :mod:`policies.accounts`; the groups and roles
of a local user come from the directory file (:mod:`policies.directory`). With OIDC (Keycloak,
Entra ID, Okta through Streamlit's ``st.login``) the user, groups and roles come from the ID
token's claims through :func:`principal_from_claims`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import AuthenticationError, ConfigError

USER_PREFIX = "user:"
EMPLOYEE = "employee"
ADMIN = "admin"
COMPLIANCE = "compliance"
ROLES: frozenset[str] = frozenset({EMPLOYEE, ADMIN, COMPLIANCE})


@dataclass(frozen=True)
class Principal:
    """An authenticated user. ``groups`` drive document access; ``roles`` drive what they may do."""

    user_id: str
    groups: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=lambda: frozenset({EMPLOYEE}))

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def access_ids(self) -> frozenset[str]:
        """What the index's filter matches: the groups plus ``user:<id>``, the id under which
        a file's permissions name this user alone (a POSIX named-user entry; with LDAP the
        user's own SID is already among ``groups``)."""
        return self.groups | {USER_PREFIX + self.user_id}


class _ClaimSettings(Protocol):
    """The OIDC fields of :class:`core.settings.UISettings`."""

    oidc_user_claim: str
    oidc_groups_claim: str
    oidc_roles_claim: str
    oidc_role_map: dict[str, str]
    oidc_group_prefix_strip: str


@dataclass(frozen=True)
class ClaimMapping:
    """How token claims become a :class:`Principal`.

    Claim names may be dotted paths into nested claims (Keycloak's ``realm_access.roles``,
    ``resource_access.enclave.roles``). ``role_map`` maps IdP group or role values to Enclave
    roles; only mapped values grant ``admin``/``compliance`` (an IdP group that happens to be
    called "admin" grants nothing unless mapped). Every authenticated user is an ``employee``.
    ``group_map`` optionally renames IdP groups (Entra ID sends group object ids).
    """

    user_claim: str = "preferred_username"
    groups_claim: str = "groups"
    roles_claim: str = "roles"
    role_map: Mapping[str, str] = field(default_factory=dict)
    group_prefix_strip: str = ""
    group_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted({r for r in self.role_map.values() if r not in ROLES})
        if unknown:
            raise ConfigError(
                f"ui.oidc_role_map maps to unknown role(s) {unknown}; roles are {sorted(ROLES)}"
            )

    @classmethod
    def from_settings(cls, ui: _ClaimSettings) -> ClaimMapping:
        return cls(
            user_claim=ui.oidc_user_claim,
            groups_claim=ui.oidc_groups_claim,
            roles_claim=ui.oidc_roles_claim,
            role_map=dict(ui.oidc_role_map),
            group_prefix_strip=ui.oidc_group_prefix_strip,
            group_map=dict(getattr(ui, "oidc_group_map", {}) or {}),
        )


def claim_value(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at ``path``; a literal key wins over a dotted walk (URL-shaped claim names)."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)]


def principal_from_claims(
    claims: Mapping[str, Any], mapping: ClaimMapping | _ClaimSettings
) -> Principal:
    """Map ID-token claims to a Principal; raises AuthenticationError without a user claim."""
    m = mapping if isinstance(mapping, ClaimMapping) else ClaimMapping.from_settings(mapping)
    user_values = _as_strings(claim_value(claims, m.user_claim))
    if not user_values:
        raise AuthenticationError(
            f"the identity provider's token has no '{m.user_claim}' claim; "
            "set ui.oidc_user_claim to a claim your provider sends",
            code="auth.claim_missing",
        )
    groups: set[str] = set()
    for raw in _as_strings(claim_value(claims, m.groups_claim)):
        name = raw
        if m.group_prefix_strip and name.startswith(m.group_prefix_strip):
            name = name[len(m.group_prefix_strip) :]
        name = m.group_map.get(raw, m.group_map.get(name, name))
        if name:
            groups.add(name)
    roles: set[str] = {EMPLOYEE}
    idp_values = set(_as_strings(claim_value(claims, m.roles_claim)))
    idp_values |= set(_as_strings(claim_value(claims, m.groups_claim)))
    idp_values |= groups
    for value in idp_values:
        role = m.role_map.get(value)
        if role is not None:
            roles.add(role)
    return Principal(user_id=user_values[0], groups=frozenset(groups), roles=frozenset(roles))
