"""One object bundling every policy component, built from the settings.

``PolicyService.from_settings(settings)`` loads the directory, the access rules, the usage
policy and the models registry, opens the database (migrating the policies tables on first use;
a log written before records were signed is re-anchored once, see
:meth:`~policies.audit.AuditLog.upgrade_legacy_chain`) and the key files, and exposes
``.directory .rules .gate .licence .audit .pii .accounts``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from core.errors import AccessDeniedError, AuthenticationError, ConfigError, LoginFailed
from core.settings import Settings
from policies.access import AccessRules
from policies.accounts import LocalAccounts
from policies.audit import AuditLog
from policies.audit_anchors import Anchors, AnchorStore, DatabaseAnchors, FileAnchors, SyslogAnchors
from policies.decision import policy_version
from policies.directory import Directory, DirectoryBackend, load_directory
from policies.gate import UsageGate
from policies.identity import ADMIN, Principal, principal_from_claims
from policies.keys import (
    HmacKey,
    load_or_create_hmac_key,
    load_or_create_signing_key,
    load_public_keys,
)
from policies.licence import LicenceGate
from policies.models import ModelRegistry
from policies.pii import PiiMasker
from policies.usage import UsagePolicy, dump_usage

MIGRATIONS = Path(__file__).with_name("migrations")
ANCHOR_FILE = Path("audit-anchors") / "anchors.jsonl"
USAGE_OVERRIDE = "usage-policy.yaml"
VERSION_TABLE = "alembic_version_policies"
_MIGRATED: set[str] = set()


def anchor_stores(settings: Settings) -> list[AnchorStore]:
    """The external anchor stores the settings configure (docs/policies.md)."""
    pol = settings.policy
    stores: list[AnchorStore] = []
    if pol.audit_anchor_file_enabled:
        stores.append(FileAnchors(pol.audit_anchor_file or settings.data_dir / ANCHOR_FILE))
    if pol.audit_anchor_database_url is not None:
        stores.append(DatabaseAnchors(pol.audit_anchor_database_url.get_secret_value()))
    if pol.audit_anchor_syslog:
        stores.append(SyslogAnchors(pol.audit_anchor_syslog))
    return stores


@dataclass(frozen=True)
class Erasure:
    """What ``forget`` removed: the audit pseudonym link, usage counters, and per package the
    rows its ``<package>.erasure`` hook deleted (chat history: conversations)."""

    had_pseudonym: bool
    usage_rows: int
    erased: dict[str, int] = field(default_factory=dict)


def migrate_policies(engine: Engine) -> None:
    key = str(engine.url)
    if key in _MIGRATED:
        return
    from core.db import migrate

    migrate(engine, MIGRATIONS, VERSION_TABLE)
    _MIGRATED.add(key)


class PolicyService:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        directory: DirectoryBackend,
        rules: AccessRules,
        usage: UsagePolicy,
        registry: ModelRegistry,
    ) -> None:
        pol = settings.policy
        self.settings = settings
        self.engine = engine
        self.directory = directory
        self.rules = rules
        self.usage = usage
        self.registry = registry
        self.pii = PiiMasker(pol.pii_kinds)
        self.audit_key_file = pol.audit_key_file or settings.keys_dir / "audit-hmac.key"
        self.signing_key_file = pol.signing_key_file or settings.keys_dir / "audit-signing.key"
        self.licences_dir = pol.licences_dir or settings.data_dir / "licences"
        self._signing_key: Ed25519PrivateKey | None = None
        self._directory_lock = threading.Lock()
        self._directory_mtime = _mtime_ns(settings.directory)
        self.version = policy_version(
            {"access_rules": rules.version, "usage": usage.version, "models": registry.version}
        )
        self.audit = AuditLog(
            engine,
            HmacKey(load_or_create_hmac_key(self.audit_key_file)),
            signer=self.signing_key,
            masker=self.pii if pol.mask_pii_in_audit else None,
            trusted_public_keys=load_public_keys(pol.audit_public_keys),
            anchors=Anchors(anchor_stores(settings), pol.audit_anchor_every),
        )
        self.accounts = LocalAccounts(
            engine,
            directory,
            lockout_attempts=pol.lockout_attempts,
            lockout_minutes=pol.lockout_minutes,
            min_password_length=pol.min_password_length,
        )
        self.gate = UsageGate(usage, engine, self.policy_version)
        self.licence = LicenceGate(
            registry,
            engine,
            self.audit,
            self.licences_dir,
            self.policy_version,
            rehash_interval_s=pol.model_rehash_interval_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyService:
        from core.db import make_engine

        engine = make_engine(settings.db_url)
        migrate_policies(engine)
        svc = cls(
            settings,
            engine,
            directory=load_directory(settings),
            rules=AccessRules.load(settings.access_rules),
            usage=UsagePolicy.load(usage_file(settings)),
            registry=ModelRegistry.load(settings.policy.models_file),
        )
        svc.audit.upgrade_legacy_chain(svc.version)
        return svc

    def policy_version(self) -> str:
        return self.version

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        if self._signing_key is None:
            self._signing_key = load_or_create_signing_key(self.signing_key_file)
        return self._signing_key

    # Identity ---------------------------------------------------------------------------
    def directory_now(self) -> DirectoryBackend:
        """The directory as it says now. The YAML file is re-read when its mtime changed (a
        group or role removed, or a user disabled, applies at the next request of every
        caller); an LDAP directory answers from its own TTL cache."""
        if self.settings.ldap.url:
            return self.directory
        path = self.settings.directory
        mtime = _mtime_ns(path)
        with self._directory_lock:
            if mtime != self._directory_mtime:
                fresh = Directory.load(path)
                self.directory = fresh
                self.accounts.directory = fresh
                self._directory_mtime = mtime
            return self.directory

    def current_principal(
        self, user_id: str, *, claimed: Principal | None = None
    ) -> Principal | None:
        """The principal as the directory says now; ``None`` when the user may not act.

        The one place that answers "who is this user now" for every caller (sign-in sessions,
        file downloads): ``None`` if the directory marks the user disabled or a local account
        of that name is disabled. Groups and roles: for an OIDC sign-in, ``claimed`` (the
        token's claims: the identity provider is the directory then); otherwise the directory
        entry as it is now; a user without an entry has no groups (fail closed)."""
        entry = self.directory_now().entry(user_id)
        if entry is not None and entry.disabled:
            return None
        if self.accounts.is_disabled(user_id):
            return None
        if claimed is not None:
            return claimed
        if entry is None:
            return Principal(user_id=user_id, groups=frozenset())
        return entry.principal()

    def resolve_user(self, name: str) -> Principal | None:
        """The directory's Principal for ``name`` (CLIs' ``--user``); None if unknown/disabled."""
        return self.directory.get(name)

    def principal_for_claims(self, claims: Mapping[str, Any]) -> Principal:
        """The principal of an OIDC sign-in. With a directory that knows the user (LDAP), the
        groups are the directory's, as for ``--user`` and local sign-in (the token's group
        claims are not used then); roles are the directory's plus the claim-mapped ones. An
        account the directory does not know or has disabled cannot sign in."""
        from_claims = principal_from_claims(claims, self.settings.ui)
        if not self.settings.ldap.url:
            return from_claims
        found = self.directory.get(from_claims.user_id)
        if found is None:
            raise AuthenticationError(
                f"'{from_claims.user_id}' is not an enabled account of the directory"
            )
        return Principal(
            user_id=found.user_id, groups=found.groups, roles=found.roles | from_claims.roles
        )

    def authenticate(self, name: str, password: str) -> Principal:
        """Local sign-in, audited as a ``login`` event either way."""
        try:
            principal = self.accounts.authenticate(name, password)
        except LoginFailed as exc:
            self.audit.append(
                "login",
                user_id=name,
                policy_version=self.version,
                details={"ok": False, "reason": exc.detail, "method": "local"},
            )
            raise
        self.audit.append(
            "login",
            principal=principal,
            policy_version=self.version,
            details={"ok": True, "method": "local"},
        )
        return principal

    # PII --------------------------------------------------------------------------------
    def mask_prompt(self, text: str) -> str:
        """The prompt text as the LLM may see it (masked when policy.mask_pii_in_prompts)."""
        return self.pii.mask(text) if self.settings.policy.mask_pii_in_prompts else text

    def mask_for_audit(self, text: str) -> str:
        """Free text as the audit log may keep it (masked when policy.mask_pii_in_audit)."""
        return self.pii.mask(text) if self.settings.policy.mask_pii_in_audit else text

    def forget_user(self, user_id: str) -> bool:
        """Erasure (:meth:`erase_user`); True if the user had an audit pseudonym."""
        return self.erase_user(user_id).had_pseudonym

    def erase_user(self, user_id: str) -> Erasure:
        """Erasure request: unlink the user's audit pseudonym, drop their usage counters, and
        delete what other packages keep about them (the chat history), found through their
        ``erasure`` hooks (:mod:`core.erasure`)."""
        from core.erasure import erase_user_everywhere

        usage = self.gate.forget_user(user_id)
        had = self.audit.forget_user(user_id)
        return Erasure(had, usage, erase_user_everywhere(self.engine, user_id))

    def set_usage_limits(
        self,
        principal: Principal,
        default: dict[str, int | None],
        groups: dict[str, dict[str, int | None]],
        users: dict[str, dict[str, int | None]],
    ) -> UsagePolicy:
        """An admin changes the quotas: written to the usage policy file, in force at once in
        this process (and in every process that starts later), audited as ``admin_change``.

        The file is ``policy.usage_file`` when set, else ``<data_dir>/usage-policy.yaml``
        (which then takes precedence over the shipped default)."""
        if ADMIN not in principal.roles:
            raise AccessDeniedError(
                f"only an admin may change quotas ('{principal.user_id}' is not)",
                code="policy.role_required",
            )
        before = self.usage
        data = before.with_limits(default, groups, users)
        target = self.settings.policy.usage_file or self.settings.data_dir / USAGE_OVERRIDE
        raw = dump_usage(data)
        try:
            write_atomically(target, raw)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the usage policy file {target}: {exc.strerror or exc}; change "
                "it where it is managed (for example a ConfigMap) instead"
            ) from exc
        fresh = UsagePolicy.load(target)
        self.usage = fresh
        self.gate.policy = fresh
        self.version = policy_version(
            {
                "access_rules": self.rules.version,
                "usage": fresh.version,
                "models": self.registry.version,
            }
        )
        self.audit.append(
            "admin_change",
            principal=principal,
            policy_version=self.version,
            details={
                "change": "usage_limits",
                "file": str(target),
                "before": before.data.get("limits"),
                "after": data["limits"],
            },
        )
        return fresh


def _mtime_ns(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def usage_file(settings: Settings) -> Path | None:
    """The usage policy in force: ``policy.usage_file``, else the one an admin saved in the UI
    (``<data_dir>/usage-policy.yaml``), else None (the shipped default)."""
    if settings.policy.usage_file is not None:
        return settings.policy.usage_file
    saved = settings.data_dir / USAGE_OVERRIDE
    return saved if saved.is_file() else None


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (a reader sees the old file or the new, never half)."""
    import os
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
