"""The directory file: which groups and roles each user has.

YAML::

    users:
      alice: {groups: [hr, everyone], roles: [employee]}
      bob:   {groups: [engineering, everyone], roles: [employee, admin]}
      carol: {groups: [everyone], roles: [compliance], disabled: true}

``roles`` defaults to ``[employee]``; ``disabled: true`` makes :meth:`Directory.get` return
``None`` (and local sign-in fails). Local accounts link to entries by user name.

:class:`DirectoryBackend` is what every directory offers (this YAML file, and LDAP / Active
Directory in :mod:`policies.directory_ldap`); :func:`load_directory` picks the configured one,
so the CLIs' ``--user``, the UI's local sign-in and OIDC resolve a user the same way. In this
file a group's principal id is its name (a YAML directory may list SIDs as groups to match an
SMB share's ACLs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from core.errors import ConfigError
from policies.identity import EMPLOYEE, ROLES, Principal

if TYPE_CHECKING:
    from core.settings import Settings


class DirectoryBackend(Protocol):
    """Users -> principals, and names <-> principal ids (see the module docstring)."""

    version: str

    @property
    def source(self) -> object:
        """What messages name: the YAML file, or the LDAP server."""

    def get(self, name: str) -> Principal | None:
        """The user's Principal; ``None`` for an unknown or disabled user."""

    def entry(self, name: str) -> DirectoryEntry | None:
        """The user's entry, disabled ones included (admin views, local sign-in)."""

    def principal_ids(self, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """Group names, ``user:<name>`` markers or SIDs -> the ids a token carries;
        ``(found, unknown names)``."""

    def display_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Principal ids -> names for people (SIDs -> DOMAIN\\name); unknown ids left out."""


def load_directory(settings: Settings) -> DirectoryBackend:
    """The configured directory: LDAP when ``ldap.url`` is set, else the YAML file."""
    if settings.ldap.url:
        from policies.directory_ldap import LdapDirectory

        return LdapDirectory.from_settings(settings.ldap)
    return Directory.load(settings.directory)


_USER_KEYS = {"groups", "roles", "disabled", "display_name"}


@dataclass(frozen=True)
class DirectoryEntry:
    name: str
    groups: frozenset[str]
    roles: frozenset[str]
    disabled: bool = False
    display_name: str | None = None

    def principal(self) -> Principal:
        return Principal(user_id=self.name, groups=self.groups, roles=self.roles)


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return list(value)


class Directory:
    """Users -> groups + roles, loaded from a YAML file (or built in code for tests)."""

    def __init__(self, entries: dict[str, DirectoryEntry], source: Path | None = None) -> None:
        self._entries = entries
        self.source = source
        canonical = repr(
            sorted(
                (e.name, sorted(e.groups), sorted(e.roles), e.disabled) for e in entries.values()
            )
        )
        self.version = hashlib.sha256(canonical.encode()).hexdigest()

    @classmethod
    def empty(cls) -> Directory:
        return cls({})

    @classmethod
    def load(cls, path: Path | str | None) -> Directory:
        """Load the directory; ``None`` gives an empty directory (nobody has groups)."""
        if path is None:
            return cls.empty()
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"directory file not found: {p}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"directory file {p} is not valid YAML: {exc}") from exc
        return cls.from_mapping(data, p)

    @classmethod
    def from_mapping(cls, data: Any, source: Path | None = None) -> Directory:
        where = f"directory file {source}" if source else "directory"
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: top level must be a mapping with a 'users' key")
        unknown = set(data) - {"users"}
        if unknown:
            raise ConfigError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
        users = data.get("users") or {}
        if not isinstance(users, dict):
            raise ConfigError(f"{where}: 'users' must map user names to entries")
        entries: dict[str, DirectoryEntry] = {}
        for name, raw in users.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}: user names must be non-empty strings, got {name!r}")
            raw = raw or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{where}: entry of user '{name}' must be a mapping")
            bad = set(raw) - _USER_KEYS
            if bad:
                raise ConfigError(
                    f"{where}: user '{name}' has unknown key(s) {sorted(bad)}; "
                    f"allowed: {sorted(_USER_KEYS)}"
                )
            groups = _str_list(raw.get("groups"), f"{where}: users.{name}.groups")
            roles = _str_list(raw.get("roles"), f"{where}: users.{name}.roles") or [EMPLOYEE]
            bad_roles = sorted(set(roles) - ROLES)
            if bad_roles:
                raise ConfigError(
                    f"{where}: user '{name}' has unknown role(s) {bad_roles}; "
                    f"roles are {sorted(ROLES)}"
                )
            disabled = raw.get("disabled", False)
            if not isinstance(disabled, bool):
                raise ConfigError(f"{where}: users.{name}.disabled must be true or false")
            display = raw.get("display_name")
            entries[name] = DirectoryEntry(
                name=name,
                groups=frozenset(groups),
                roles=frozenset(roles),
                disabled=disabled,
                display_name=str(display) if display is not None else None,
            )
        return cls(entries, source)

    def get(self, name: str) -> Principal | None:
        """The user's Principal; ``None`` for an unknown or disabled user."""
        entry = self._entries.get(name)
        if entry is None or entry.disabled:
            return None
        return entry.principal()

    def entry(self, name: str) -> DirectoryEntry | None:
        """The raw entry, disabled ones included (for admin views)."""
        return self._entries.get(name)

    def principal_ids(self, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """Names are the ids in this directory."""
        return {n: n for n in names}, []

    def display_names(self, ids: Iterable[str]) -> dict[str, str]:
        return {i: i for i in ids}

    def __iter__(self) -> Iterator[DirectoryEntry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)
