"""The LDAP / Active Directory directory backend against the real Samba DC: principals are SIDs
(nested groups, the primary group, network-logon SIDs), cached with a TTL, and the CLI's
``--user``, local sign-in and OIDC resolve the same principal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE

from core.errors import DirectoryUnavailableError
from core.settings import LdapSettings
from policies import ntacl as N
from policies.directory_ldap import LdapDirectory
from tests.smb.conftest import DomainFixture
from tests.smb.dc import REALM, USER_PASSWORD, add_group, admin_ldap, sid_of


def ldap_settings(domain: DomainFixture, **kw: object) -> LdapSettings:
    values: dict[str, object] = {
        "url": f"ldaps://{domain.dc.ip}",
        "bind_user": f"svc-enclave@{REALM.lower()}",
        "bind_password": USER_PASSWORD,
        "ca_file": domain.dc.ca_file,
        "cache_ttl_s": 0,
    }
    values.update(kw)
    return LdapSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def directory(domain: DomainFixture) -> Iterator[LdapDirectory]:
    d = LdapDirectory(ldap_settings(domain))
    yield d
    d.close()


def test_a_users_groups_are_sids_with_nested_groups(
    domain: DomainFixture, directory: LdapDirectory
) -> None:
    sids = domain.sids
    bob = directory.get("bob")
    assert bob is not None and bob.user_id == "bob"
    assert {sids["bob"], sids["hr-managers"], sids["hr"], sids["Domain Users"]} <= bob.groups
    assert N.BUILTIN_USERS in bob.groups  # Domain Users is a member of BUILTIN\Users
    assert bob.groups >= N.NETWORK_LOGON_SIDS
    assert sids["engineering"] not in bob.groups
    assert all(N.is_sid(g) for g in bob.groups)
    # the user principal name resolves to the same principal
    upn = directory.get(f"bob@{REALM.lower()}")
    assert upn is not None and upn.groups == bob.groups and upn.user_id == "bob"
    assert directory.get("nobody-by-this-name") is None
    assert directory.get("hr") is None  # a group is not a user


def test_names_resolve_both_ways(domain: DomainFixture, directory: LdapDirectory) -> None:
    sids = domain.sids
    found, unknown = directory.principal_ids(["hr", "user:alice", N.EVERYONE, "no-such-group"])
    assert found == {"hr": sids["hr"], "user:alice": sids["alice"], N.EVERYONE: N.EVERYONE}
    assert unknown == ["no-such-group"]
    names = directory.display_names(
        [sids["hr-managers"], N.AUTHENTICATED_USERS, "S-1-5-21-9-9-9-9"]
    )
    assert names == {
        sids["hr-managers"]: "hr-managers",
        N.AUTHENTICATED_USERS: "NT AUTHORITY\\Authenticated Users",
    }


def test_disabled_account_resolves_to_nobody(domain: DomainFixture) -> None:
    conn = admin_ldap(domain.dc)
    dn = f"CN=outsider,CN=Users,{domain.dc.base_dn}"
    d = LdapDirectory(ldap_settings(domain))
    try:
        assert d.get("outsider") is not None
        assert conn.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, ["514"])]})
        assert d.get("outsider") is None
        entry = d.entry("outsider")
        assert entry is not None and entry.disabled
    finally:
        conn.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, ["512"])]})
        conn.unbind()
        d.close()


def test_membership_changes_show_after_the_cache_ttl(domain: DomainFixture) -> None:
    conn = admin_ldap(domain.dc)
    group = f"ttl-{int(time.time() * 1000) % 10**8}"
    add_group(conn, domain.dc, group, [])
    sid = sid_of(conn, domain.dc, group)
    cached = LdapDirectory(ldap_settings(domain, cache_ttl_s=1.5))
    try:
        before = cached.get("carol")
        assert before is not None and sid not in before.groups
        ok = conn.modify(
            f"CN={group},CN=Users,{domain.dc.base_dn}",
            {"member": [(MODIFY_ADD, [f"CN=carol,CN=Users,{domain.dc.base_dn}"])]},
        )
        assert ok
        still = cached.get("carol")
        assert still is not None and sid not in still.groups  # served from the cache
        time.sleep(1.6)
        after = cached.get("carol")
        assert after is not None and sid in after.groups
    finally:
        conn.delete(f"CN={group},CN=Users,{domain.dc.base_dn}")
        conn.unbind()
        cached.close()


def test_roles_from_directory_groups(domain: DomainFixture) -> None:
    d = LdapDirectory(ldap_settings(domain, role_groups={"compliance": ["hr-managers"]}))
    try:
        bob, alice = d.get("bob"), d.get("alice")
        assert bob is not None and alice is not None
        assert bob.roles == {"employee", "compliance"}  # through the nested membership
        assert alice.roles == {"employee"}
    finally:
        d.close()


def test_bind_failure_and_unreachable_server_are_clear(domain: DomainFixture) -> None:
    wrong = LdapDirectory(ldap_settings(domain, bind_password="wrong"))
    with pytest.raises(DirectoryUnavailableError) as err:
        wrong.get("bob")
    assert err.value.code == "directory.bind_failed" and "svc-enclave" in err.value.message
    gone = LdapDirectory(ldap_settings(domain, url="ldaps://127.0.0.3:6360", timeout_s=2))
    with pytest.raises(DirectoryUnavailableError) as err:
        gone.get("bob")
    assert err.value.code == "directory.unreachable"


def test_plain_ldap_without_tls_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="start_tls"):
        LdapSettings(url="ldap://dc.example.com", bind_user="svc", bind_password="x")  # type: ignore[arg-type]


def test_starttls_works(domain: DomainFixture) -> None:
    d = LdapDirectory(ldap_settings(domain, url=f"ldap://{domain.dc.ip}", start_tls=True))
    try:
        assert d.get("alice") is not None
    finally:
        d.close()


def test_cli_user_local_sign_in_and_oidc_resolve_the_same_principal(
    domain: DomainFixture, tmp_path: Path
) -> None:
    from policies.service import PolicyService

    settings = domain.settings(tmp_path / "data", ui={"auth": "oidc"})
    svc = PolicyService.from_settings(settings)
    cli_user = svc.resolve_user("bob")
    assert cli_user is not None
    svc.accounts.create("bob", "a-long-local-password")
    local = svc.authenticate("bob", "a-long-local-password")
    oidc = svc.principal_for_claims(
        {"preferred_username": f"bob@{REALM.lower()}", "groups": ["ignored-idp-group"]}
    )
    assert cli_user.groups == local.groups == oidc.groups
    assert oidc.user_id == "bob" and "ignored-idp-group" not in oidc.groups
    from core.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        svc.principal_for_claims({"preferred_username": "not-in-the-directory"})
