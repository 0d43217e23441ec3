"""Enclave's error tree.

Every error a user or an operator can see derives from :class:`EnclaveError` and carries a
stable, dotted ``code`` (``area.reason``) that scripts, the audit log and the UI can rely on.
Packages add their own subclasses next to the code that raises them; the codes never change
meaning once released.
"""

from __future__ import annotations


class EnclaveError(Exception):
    """Base of all Enclave errors. ``code`` is stable; ``message`` is for people."""

    code: str = "enclave.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(EnclaveError):
    """The configuration file or an ENCLAVE_* variable is invalid."""

    code = "config.invalid"


class DatabaseError(EnclaveError):
    """The state/audit database cannot be reached or migrated."""

    code = "db.error"


class IndexError_(EnclaveError):
    """Base for vector-index failures (``IndexError`` is a builtin, hence the underscore)."""

    code = "index.error"


class StoreLockedError(IndexError_):
    """The embedded store is open in another process (Qdrant Edge is single-process)."""

    code = "index.locked"


class IngestError(EnclaveError):
    code = "ingest.error"


class SyncInProgressError(IngestError):
    """Another sync of the same store is running."""

    code = "ingest.sync_running"


class PolicyError(EnclaveError):
    """Base for policy decisions that refuse a request; ``reason`` is a stable reason code."""

    code = "policy.denied"


class AccessDeniedError(PolicyError):
    code = "policy.access_denied"


class AuthenticationError(PolicyError):
    code = "auth.failed"


class LicenceError(PolicyError):
    code = "licence.not_accepted"


class AuditError(EnclaveError):
    code = "audit.error"


class LLMError(EnclaveError):
    code = "llm.error"


class LLMUnavailableError(LLMError):
    code = "llm.unreachable"


class LLMTimeoutError(LLMError):
    code = "llm.timeout"


# Policies ------------------------------------------------------------------------------------


class AccountError(EnclaveError):
    """A local-account operation failed (unknown account, duplicate name, weak password)."""

    code = "account.error"


class LicenceRegistryError(ConfigError):
    """The approved-models registry file is malformed or breaks a licence rule."""

    code = "licence.registry_invalid"


class AuditIntegrityError(AuditError):
    """The audit chain does not verify (a record was edited, deleted, inserted or reordered)."""

    code = "audit.tampered"
