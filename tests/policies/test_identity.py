"""OIDC claim mapping with claim sets shaped like real Keycloak, Entra ID and Okta ID tokens."""

from __future__ import annotations

import pytest

from core.errors import AuthenticationError, ConfigError
from core.settings import UISettings
from policies.identity import ClaimMapping, Principal, principal_from_claims

KEYCLOAK = {
    "exp": 1795000000,
    "iat": 1794999700,
    "auth_time": 1794999690,
    "jti": "4c1e5a3b-8d1f-4f7e-9a43-5f2f3e1c9b10",
    "iss": "https://sso.example.com/realms/corp",
    "aud": "enclave",
    "sub": "f:3e9c1c5e-7f3a-4b8e-9d62-1b2f3c4d5e6f:alice",
    "typ": "ID",
    "azp": "enclave",
    "session_state": "1f2e3d4c-5b6a-4789-8a7b-6c5d4e3f2a1b",
    "acr": "1",
    "sid": "1f2e3d4c-5b6a-4789-8a7b-6c5d4e3f2a1b",
    "email_verified": True,
    "name": "Alice Andersson",
    "preferred_username": "alice",
    "given_name": "Alice",
    "family_name": "Andersson",
    "email": "alice@example.com",
    "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-corp"]},
    "resource_access": {
        "enclave": {"roles": ["enclave-compliance"]},
        "account": {"roles": ["manage-account", "view-profile"]},
    },
    "groups": ["/hr", "/hr/managers", "/everyone"],
}

ENTRA = {
    "aud": "6731de76-14a6-49ae-97bc-6eba6914391e",
    "iss": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
    "iat": 1794999700,
    "nbf": 1794999700,
    "exp": 1795003600,
    "name": "Bob Berg",
    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
    "preferred_username": "bob@contoso.com",
    "rh": "0.AXAAjQSIkWdsW0yxEjajBLZtrXbeMWemFK5Jl7xuummUFOB0AAA.",
    "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
    "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
    "uti": "mBeSdHbGDEGwY3Ll7cwSAA",
    "ver": "2.0",
    "groups": [
        "5f7d1c2e-0a4b-4c3d-9e8f-7a6b5c4d3e2f",
        "e1d2c3b4-a5f6-4789-8abc-def012345678",
    ],
    "roles": ["Enclave.Admin"],
}

OKTA = {
    "sub": "00uid4BxXw6I6TV4m0g3",
    "name": "Carol Chen",
    "email": "carol@example.com",
    "ver": 1,
    "iss": "https://example.okta.com/oauth2/default",
    "aud": "0oabucvyc38HLL1ef0h7",
    "iat": 1794999700,
    "exp": 1795003300,
    "jti": "ID.4eAWJOCMB3SX8XewDfVR",
    "amr": ["pwd", "mfa"],
    "idp": "00ok1u7AsAkrwdZL3z0g3",
    "preferred_username": "carol@example.com",
    "auth_time": 1794999690,
    "at_hash": "preYlGHFbHvRMMz3PHqJYA",
    "groups": ["Everyone", "Enclave-Compliance", "Finance"],
}


def test_keycloak_nested_client_roles_and_group_paths() -> None:
    mapping = ClaimMapping(
        user_claim="preferred_username",
        groups_claim="groups",
        roles_claim="resource_access.enclave.roles",
        role_map={"enclave-compliance": "compliance", "enclave-admin": "admin"},
        group_prefix_strip="/",
    )
    p = principal_from_claims(KEYCLOAK, mapping)
    assert p == Principal(
        "alice", frozenset({"hr", "hr/managers", "everyone"}), frozenset({"employee", "compliance"})
    )


def test_entra_app_roles_and_group_object_ids() -> None:
    mapping = ClaimMapping(
        user_claim="preferred_username",
        roles_claim="roles",
        role_map={"Enclave.Admin": "admin"},
        group_map={"5f7d1c2e-0a4b-4c3d-9e8f-7a6b5c4d3e2f": "engineering"},
    )
    p = principal_from_claims(ENTRA, mapping)
    assert p.user_id == "bob@contoso.com"
    assert p.roles == {"employee", "admin"}
    # mapped object id renamed; unmapped one kept verbatim (usable in access rules)
    assert p.groups == {"engineering", "e1d2c3b4-a5f6-4789-8abc-def012345678"}


def test_entra_groups_overage_gives_no_groups() -> None:
    """Entra replaces 'groups' by _claim_names when a user has too many: fail closed."""
    claims = {k: v for k, v in ENTRA.items() if k != "groups"}
    claims["_claim_names"] = {"groups": "src1"}
    p = principal_from_claims(claims, ClaimMapping(roles_claim="roles"))
    assert p.groups == frozenset()


def test_okta_groups_as_roles_via_ui_settings() -> None:
    ui = UISettings(
        auth="oidc",
        oidc_user_claim="email",
        oidc_groups_claim="groups",
        oidc_roles_claim="groups",
        oidc_role_map={"Enclave-Compliance": "compliance"},
    )
    p = principal_from_claims(OKTA, ui)
    assert p.user_id == "carol@example.com"
    assert p.groups == {"Everyone", "Enclave-Compliance", "Finance"}
    assert p.roles == {"employee", "compliance"}


def test_unmapped_admin_group_grants_nothing() -> None:
    claims = dict(OKTA, groups=["admin", "compliance"])
    p = principal_from_claims(claims, ClaimMapping(user_claim="email"))
    assert p.roles == {"employee"}


def test_missing_user_claim_refuses() -> None:
    with pytest.raises(AuthenticationError) as info:
        principal_from_claims({"sub": "x"}, ClaimMapping(user_claim="upn"))
    assert info.value.code == "auth.claim_missing"
    assert "upn" in info.value.message


def test_role_map_to_unknown_role_is_config_error() -> None:
    with pytest.raises(ConfigError, match="superuser"):
        ClaimMapping(role_map={"x": "superuser"})


def test_principal_is_frozen_and_defaults_to_employee() -> None:
    p = Principal("x")
    assert p.roles == {"employee"} and p.groups == frozenset()
    with pytest.raises(AttributeError):
        p.user_id = "y"  # type: ignore[misc]
