"""LDAP / Active Directory as Enclave's directory (``ldap3``): users, their transitive groups
as SIDs, names for display.

A user's principal carries SIDs, the ids an SMB share's ACLs name (stable across renames):

- the user's own ``objectSid``;
- ``tokenGroups`` of the user object: the DC computes it with every nested group and the
  primary group (Domain Users) and the BUILTIN groups (``LDAP_MATCHING_RULE_IN_CHAIN`` misses
  the primary group, so it is not used);
- the SIDs a file server adds to every network logon (Everyone, Authenticated Users, NETWORK,
  This Organization; :data:`policies.ntacl.NETWORK_LOGON_SIDS`).

Names are for people only (``display_names``); a renamed group keeps its SID, so nothing in
the index changes. Lookups go through the service account's bind (simple bind over LDAPS or
StartTLS: TLS is required by the settings) and are cached for ``ldap.cache_ttl_s`` (an
unknown user too), so a group change reaches answers within that time. A disabled account
(``userAccountControl`` bit 2) resolves to nobody.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from core.errors import DirectoryUnavailableError
from core.settings import LdapSettings
from policies import ntacl
from policies.directory import DirectoryEntry
from policies.identity import EMPLOYEE, USER_PREFIX, Principal

_ACCOUNT_ATTRS = [
    "objectSid",
    "sAMAccountName",
    "userAccountControl",
    "displayName",
    "objectClass",
]
_UF_ACCOUNTDISABLE = 0x2
_SID_BATCH = 100
T = TypeVar("T")


@dataclass(frozen=True)
class _Account:
    dn: str
    sid: str
    name: str
    kind: str  # user | group | other
    disabled: bool
    display: str | None


class _TtlCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl = ttl_s
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl, value)
        return value


def _sid(raw: Any) -> str:
    return raw if isinstance(raw, str) else ntacl.sid_from_bytes(bytes(raw))[0]


class LdapDirectory:
    """:class:`~policies.directory.DirectoryBackend` on an LDAP / AD server."""

    def __init__(self, settings: LdapSettings) -> None:
        if not settings.url or not settings.bind_user or settings.bind_password is None:
            raise DirectoryUnavailableError("ldap.url, ldap.bind_user and a password are needed")
        self.settings = settings
        self.source = settings.url
        self.version = hashlib.sha256(
            f"ldap:{settings.url}:{settings.base_dn}:{sorted(settings.role_groups.items())}".encode()
        ).hexdigest()
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._base_dn = settings.base_dn
        self._entries = _TtlCache(settings.cache_ttl_s)
        self._ids = _TtlCache(settings.cache_ttl_s)
        self._names = _TtlCache(settings.cache_ttl_s)
        self._role_sids: dict[str, frozenset[str]] | None = None

    @classmethod
    def from_settings(cls, settings: LdapSettings) -> LdapDirectory:
        return cls(settings)

    # -- connection ------------------------------------------------------------------------
    def _server(self) -> Server:
        url = urlparse(self.settings.url or "")
        ldaps = url.scheme.lower() == "ldaps"
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(self.settings.ca_file) if self.settings.ca_file else None,
            valid_names=[self.settings.tls_server_name] if self.settings.tls_server_name else None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        return Server(
            url.hostname or "",
            port=url.port or (636 if ldaps else 389),
            use_ssl=ldaps,
            tls=tls,
            get_info=NONE,
            connect_timeout=max(1, int(self.settings.timeout_s)),
        )

    def _connect(self) -> Connection:
        s = self.settings
        assert s.bind_password is not None
        conn = Connection(
            self._server(),
            user=s.bind_user,
            password=s.bind_password.get_secret_value(),
            receive_timeout=max(1, int(s.timeout_s)),
            raise_exceptions=False,
            auto_referrals=False,
            read_only=True,
        )
        try:
            conn.open()
            if s.start_tls and not conn.start_tls():
                raise DirectoryUnavailableError(
                    f"StartTLS with {s.url} failed: {conn.result.get('description')}"
                )
        except LDAPException as exc:
            raise DirectoryUnavailableError(
                f"cannot reach the directory at {s.url}: {exc}"
            ) from exc
        if not conn.bind():
            result = conn.result or {}
            raise DirectoryUnavailableError(
                f"the directory at {s.url} refused the bind of {s.bind_user}: "
                f"{result.get('description')} {result.get('message', '')}".strip(),
                code="directory.bind_failed",
            )
        if self._base_dn is None:
            conn.search("", "(objectClass=*)", BASE, attributes=["defaultNamingContext"])
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            if not entries:
                raise DirectoryUnavailableError(
                    f"the directory at {s.url} names no defaultNamingContext: set ldap.base_dn"
                )
            value = entries[0]["attributes"]["defaultNamingContext"]
            self._base_dn = str(value[0] if isinstance(value, list) else value)
        return conn

    def _search(
        self, base: str, flt: str, scope: str, attrs: list[str]
    ) -> list[tuple[str, dict[str, list[bytes]]]]:
        """One search, reconnecting once when the connection dropped."""
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = self._connect()
                try:
                    ok = self._conn.search(base, flt, scope, attributes=attrs)
                except LDAPException as exc:
                    self._drop()
                    if attempt == 2:
                        raise DirectoryUnavailableError(
                            f"directory search at {self.settings.url} failed: {exc}"
                        ) from exc
                    continue
                result = self._conn.result or {}
                if not ok and result.get("result") not in (0, 32):  # 32: no such object
                    self._drop()
                    if attempt == 2:
                        raise DirectoryUnavailableError(
                            f"directory search at {self.settings.url} failed: "
                            f"{result.get('description')} {result.get('message', '')}".strip()
                        )
                    continue
                return [
                    (e["dn"], e["raw_attributes"])
                    for e in self._conn.response or []
                    if e.get("type") == "searchResEntry"
                ]
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(LDAPException):
                conn.unbind()

    def close(self) -> None:
        with self._lock:
            self._drop()

    @property
    def base_dn(self) -> str:
        if self._base_dn is None:
            with self._lock:
                if self._conn is None:
                    self._conn = self._connect()
        assert self._base_dn is not None
        return self._base_dn

    # -- lookups ---------------------------------------------------------------------------
    @staticmethod
    def _account(dn: str, raw: dict[str, list[bytes]]) -> _Account:
        classes = {v.decode().lower() for v in raw.get("objectClass", [])}
        kind = (
            "user"
            if "user" in classes and "computer" not in classes
            else ("group" if "group" in classes else "other")
        )
        uac = raw.get("userAccountControl") or [b"0"]
        display = (raw.get("displayName") or [b""])[0].decode() or None
        return _Account(
            dn=dn,
            sid=_sid(raw["objectSid"][0]),
            name=(raw.get("sAMAccountName") or [b""])[0].decode(),
            kind=kind,
            disabled=bool(int(uac[0]) & _UF_ACCOUNTDISABLE),
            display=display,
        )

    def _find(self, name: str) -> _Account | None:
        if "@" in name:
            flt = f"(userPrincipalName={escape_filter_chars(name)})"
        else:
            flt = f"(sAMAccountName={escape_filter_chars(name.rsplit(chr(92), 1)[-1])})"
        found = self._search(self.base_dn, flt, SUBTREE, _ACCOUNT_ATTRS)
        return self._account(*found[0]) if found else None

    def _token(self, account: _Account) -> frozenset[str]:
        found = self._search(account.dn, "(objectClass=*)", BASE, ["tokenGroups"])
        groups = found[0][1].get("tokenGroups", []) if found else []
        return frozenset({account.sid, *(_sid(g) for g in groups)}) | ntacl.NETWORK_LOGON_SIDS

    def _role_map(self) -> dict[str, frozenset[str]]:
        if self._role_sids is None:
            out: dict[str, frozenset[str]] = {}
            for role, names in self.settings.role_groups.items():
                found, unknown = self.principal_ids(names)
                if unknown:
                    raise DirectoryUnavailableError(
                        f"ldap.role_groups.{role}: {', '.join(unknown)} not in the directory"
                    )
                out[role] = frozenset(found.values())
            self._role_sids = out
        return self._role_sids

    def entry(self, name: str) -> DirectoryEntry | None:
        def load() -> DirectoryEntry | None:
            account = self._find(name)
            if account is None or account.kind != "user":
                return None
            token = self._token(account)
            roles = {EMPLOYEE} | {r for r, sids in self._role_map().items() if sids & token}
            return DirectoryEntry(
                name=account.name,
                groups=token,
                roles=frozenset(roles),
                disabled=account.disabled,
                display_name=account.display,
            )

        return self._entries.get(name.lower(), load)

    def get(self, name: str) -> Principal | None:
        entry = self.entry(name)
        if entry is None or entry.disabled:
            return None
        return entry.principal()

    def principal_ids(self, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        found: dict[str, str] = {}
        unknown: list[str] = []
        for name in names:
            if ntacl.is_sid(name):
                found[name] = name
                continue
            account_name = name[len(USER_PREFIX) :] if name.startswith(USER_PREFIX) else name

            def load(account_name: str = account_name) -> str:
                account = self._find(account_name)
                return account.sid if account is not None else ""

            sid = self._ids.get(account_name.lower(), load)
            if sid:
                found[name] = sid
            else:
                unknown.append(name)
        return found, unknown

    def display_names(self, ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        todo: list[str] = []
        for sid in dict.fromkeys(ids):
            if sid in ntacl.WELL_KNOWN_NAMES:
                out[sid] = ntacl.WELL_KNOWN_NAMES[sid]
            elif ntacl.is_sid(sid):
                todo.append(sid)
        for start in range(0, len(todo), _SID_BATCH):
            part = todo[start : start + _SID_BATCH]

            def load(part: list[str] = part) -> dict[str, str]:
                flt = (
                    "(|"
                    + "".join(f"(objectSid={escape_bytes(ntacl.sid_to_bytes(s))})" for s in part)
                    + ")"
                )
                rows = self._search(self.base_dn, flt, SUBTREE, _ACCOUNT_ATTRS)
                return {a.sid: a.name for a in (self._account(dn, raw) for dn, raw in rows)}

            out.update(self._names.get(",".join(part), load))
        return out
