"""Enclave's one error tree.

Every error a user, an operator or a script can see derives from :class:`EnclaveError` and
carries a stable, dotted ``code`` (``area.reason``) that the CLIs print, the audit log records
and the UI maps to plain words. A code never changes meaning once released. Each class also
says which exit code a command ends with when it stops on that error (:mod:`core.cli`; the map
is in the README): 1 failed, 2 usage or configuration, 3 busy (retry later), 4 denied by policy.

Some classes carry more than one code (``code=`` at the raise site, for reasons that share a
handling); every code in use is listed here, and a test checks that nothing raises a code this
docstring does not name.

    EnclaveError                      enclave.error                        exit 1
    ├── ConfigError                   config.invalid                       exit 2
    │   ├── UsageError                cli.usage, cli.batch                 exit 2
    │   │   ├── UnknownUserError      policy.unknown_user                  exit 2
    │   │   ├── SourceArgumentError   ingest.bad_argument                  exit 2
    │   │   ├── EmbeddingChangedError ingest.embedding_changed             exit 2
    │   │   ├── EmbeddingNotServedError embed.model_not_served             exit 2
    │   │   ├── WorkerMismatchError   ingest.worker_mismatch               exit 2
    │   │   ├── RootEmptyError        ingest.root_empty                    exit 2
    │   │   ├── DbTargetNotEmptyError db.target_not_empty                  exit 2
    │   │   ├── SameDatabaseError     db.same_target                       exit 2
    │   │   ├── IndexTargetNotEmptyError index.target_not_empty            exit 2
    │   │   └── SameIndexError        index.same_target                    exit 2
    │   ├── LicenceRegistryError      licence.registry_invalid             exit 2
    │   └── AccountError              account.error, account.exists,
    │                                 account.unknown, account.invalid_name,
    │                                 account.weak_password                exit 2
    ├── DatabaseError                 db.error
    ├── VectorIndexError              index.error
    │   ├── StoreLockedError          index.locked                         exit 3
    │   ├── IndexUnavailableError     index.unreachable
    │   ├── ServerTooOldError         index.server_too_old
    │   ├── ClusterNotReadyError      index.cluster_not_ready
    │   ├── BadQueryError             index.bad_query
    │   ├── BadPointError             index.bad_point
    │   ├── DimensionMismatchError    index.dim_mismatch
    │   └── NoCollectionError         index.no_collection
    ├── EmbeddingError                embed.failed
    │   ├── EmbeddingBackendUnavailable embed.backend_unavailable
    │   └── EmbeddingServiceError     embed.service_unavailable
    ├── DirectoryError                directory.error
    │   └── DirectoryUnavailableError directory.unreachable, directory.bind_failed
    ├── IngestError                   ingest.error
    │   ├── SyncInProgressError       ingest.sync_running                  exit 3
    │   ├── SyncCancelledError        ingest.cancelled                     exit 130
    │   ├── HandoffLostError          ingest.handoff_lost
    │   ├── BrokerUnavailableError    ingest.broker_unavailable
    │   ├── NoWorkersError            ingest.no_workers
    │   ├── WorkerFailedError         ingest.worker_failed
    │   ├── SourceUnavailableError    ingest.source_unreachable, ingest.source_denied,
    │   │                             ingest.source_failed
    │   ├── ParserUnavailableError    ingest.parser_unavailable
    │   ├── OfflineModelMissingError  ingest.offline_model
    │   └── FileError                 (one file; recorded in the sync state, the sync goes on)
    │       ├── UnsupportedFileError  ingest.unsupported                   skipped
    │       ├── FileTooLargeError     ingest.too_large                     skipped
    │       ├── TooMuchTextError      ingest.too_much_text                 skipped
    │       ├── EncryptedFileError    ingest.encrypted                     skipped
    │       ├── EmptyDocumentError    ingest.empty                         skipped
    │       └── ParseFailedError      ingest.parse_failed, ingest.convert_failed,
    │                                 ingest.convert_timeout               failed
    ├── RemoteSyncError               (the code and exit code of the remote error; below)
    ├── PolicyError                   policy.denied                        exit 4
    │   ├── AccessDeniedError         policy.access_denied, policy.role_required
    │   ├── AuthenticationError       auth.failed, auth.claim_missing
    │   │   └── LoginFailed           auth.failed (``detail`` says why, for the audit only)
    │   └── LicenceError              licence.not_accepted
    │       ├── LicenceUsageError     licence.bad_request, licence.files_missing,
    │       │                         licence.model_not_approved,
    │       │                         licence.statement_invalid            exit 2
    │       ├── ModelMismatchError    licence.model_mismatch
    │       └── ModelNotServableError (the licence gate's reason code)
    ├── AuditError                    audit.error, audit.bad_event
    │   ├── AuditUsageError           audit.bad_request, audit.bad_format,
    │   │                             audit.bad_retention, audit.retention_floor,
    │   │                             audit.retention_unset                exit 2
    │   └── AuditIntegrityError       audit.tampered
    ├── AssistantError                assistant.error
    │   ├── PromptTooLongError        assistant.prompt_too_long
    │   └── ConversationNotFoundError history.not_found
    └── LLMError                      llm.error, llm.config, llm.load, llm.chat_format,
        │                             llm.context_overflow, llm.not_chat_model,
        │                             llm.prompt_echo, llm.empty_answer
        ├── LLMUnavailableError       llm.unreachable
        ├── LLMTimeoutError           llm.timeout
        └── ModelFileError            llm.model_file

``RemoteSyncError`` carries the code and exit code of an error raised in *another* process: an
``ingest sync`` that handed its sync to the process owning the embedded store re-raises the
owner's error with it, so the CLI prints the same code and exits as if it had synced itself.

Codes that are decisions rather than errors (the usage gate's ``quota.*``, ``input.*``,
``acceptable_use.*``; ``answer.no_support``) are reason codes of :mod:`policies.decision`,
documented in docs/policies.md.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_DENIED = 4
EXIT_INTERRUPTED = 130


class EnclaveError(Exception):
    """Base of all Enclave errors. ``code`` is stable; ``message`` is for people."""

    code: str = "enclave.error"
    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


# Configuration and usage -------------------------------------------------------------------


class ConfigError(EnclaveError):
    """The configuration file or an ENCLAVE_* variable is invalid."""

    code = "config.invalid"
    exit_code = EXIT_USAGE


class UsageError(ConfigError):
    """A command was given something it cannot use (argument, input file, option combination)."""

    code = "cli.usage"


class UnknownUserError(UsageError):
    """``--user`` names nobody in the directory (or a disabled account)."""

    code = "policy.unknown_user"


class SourceArgumentError(UsageError):
    """A sync source given wrongly: a root that does not exist, a bad ``--source`` name."""

    code = "ingest.bad_argument"


class EmbeddingChangedError(UsageError):
    """The configured embedding model differs from the one that built the index."""

    code = "ingest.embedding_changed"


class EmbeddingNotServedError(UsageError):
    """``embedding.backend = "openai"``: the server does not serve the configured model."""

    code = "embed.model_not_served"


class WorkerMismatchError(UsageError):
    """An ingest worker embeds with another model, backend or dimension than the sync expects
    (its ``[embedding]`` section differs from the coordinator's)."""

    code = "ingest.worker_mismatch"


class RootEmptyError(UsageError):
    """A sync root that held files is empty now (an unmounted share?): refused by default."""

    code = "ingest.root_empty"


class DbTargetNotEmptyError(UsageError):
    """``policies db copy``: the target database already holds Enclave rows (use --force)."""

    code = "db.target_not_empty"


class SameDatabaseError(UsageError):
    """``policies db copy``: the target is the configured database itself."""

    code = "db.same_target"


class IndexTargetNotEmptyError(UsageError):
    """``ingest migrate-index``: the target holds points and neither --resume nor --force."""

    code = "index.target_not_empty"


class SameIndexError(UsageError):
    """``ingest migrate-index``: the target is the configured index itself."""

    code = "index.same_target"


class LicenceRegistryError(ConfigError):
    """The approved-models registry file is malformed or breaks a licence rule."""

    code = "licence.registry_invalid"


class AccountError(ConfigError):
    """A local-account operation failed (unknown account, duplicate name, weak password)."""

    code = "account.error"


# Storage -----------------------------------------------------------------------------------


class DatabaseError(EnclaveError):
    """The state/audit database cannot be reached or migrated."""

    code = "db.error"


class VectorIndexError(EnclaveError):
    """Base for vector-index failures."""

    code = "index.error"


class StoreLockedError(VectorIndexError):
    """The embedded store is open in another process (Qdrant Edge is single-process);
    ``holder_pid`` names that process when it could be read."""

    code = "index.locked"
    exit_code = EXIT_BUSY
    holder_pid: int | None = None


class IndexUnavailableError(VectorIndexError):
    """The Qdrant server cannot be reached (or answered with an error)."""

    code = "index.unreachable"


class ServerTooOldError(VectorIndexError):
    """The Qdrant server lacks a feature the configuration relies on (per-query IDF)."""

    code = "index.server_too_old"


class ClusterNotReadyError(VectorIndexError):
    """Fewer Qdrant peers joined than ``index.expected_peers`` within ``index.peers_wait_s``."""

    code = "index.cluster_not_ready"


class BadQueryError(VectorIndexError):
    """A search the index cannot run (wrong vector size, no vector for the mode)."""

    code = "index.bad_query"


class BadPointError(VectorIndexError):
    """A point to write lacks what every point must carry (doc_id, vectors)."""

    code = "index.bad_point"


class DimensionMismatchError(VectorIndexError):
    """The collection was built with another embedding dimension."""

    code = "index.dim_mismatch"


class NoCollectionError(VectorIndexError):
    """The collection does not exist yet (nothing was synced)."""

    code = "index.no_collection"


class EmbeddingError(EnclaveError):
    """The embedding model failed or cannot be loaded."""

    code = "embed.failed"


class EmbeddingBackendUnavailable(EmbeddingError):
    """The configured embedding backend cannot run with the installed packages."""

    code = "embed.backend_unavailable"


class EmbeddingServiceError(EmbeddingError):
    """The embedding server cannot be reached, timed out or answered with an error (after the
    configured retries)."""

    code = "embed.service_unavailable"


class DirectoryError(EnclaveError):
    """The user directory (LDAP / Active Directory) failed."""

    code = "directory.error"


class DirectoryUnavailableError(DirectoryError):
    """The directory server cannot be reached, or refused the service account's bind
    (``directory.bind_failed``): no principal can be resolved, so nothing is answered."""

    code = "directory.unreachable"


# Ingestion ---------------------------------------------------------------------------------


class IngestError(EnclaveError):
    """Base for sync failures."""

    code = "ingest.error"


class SyncInProgressError(IngestError):
    """Another sync of the same store is running."""

    code = "ingest.sync_running"
    exit_code = EXIT_BUSY


class SyncCancelledError(IngestError):
    """The sync was cancelled on request (``ingest sync --cancel-on-interrupt`` and Ctrl-C); the
    next sync resumes where it stopped, like after Ctrl-C."""

    code = "ingest.cancelled"
    exit_code = EXIT_INTERRUPTED


class HandoffLostError(IngestError):
    """A sync handed to the process owning the embedded store cannot be followed to its end
    (that process stopped, or never picked the request up)."""

    code = "ingest.handoff_lost"


class BrokerUnavailableError(IngestError):
    """The distributed-ingestion broker (Redis) cannot be reached for longer than
    ``ingest.broker_wait_s``."""

    code = "ingest.broker_unavailable"


class NoWorkersError(IngestError):
    """No ``ingest worker`` is connected to the broker within ``ingest.worker_wait_s``."""

    code = "ingest.no_workers"


class WorkerFailedError(IngestError):
    """An ingest worker cannot work at all (its model does not load, its config is invalid)."""

    code = "ingest.worker_failed"


class RemoteSyncError(EnclaveError):
    """An error of a sync that ran in another process, re-raised with that error's code and
    exit code (see the module docstring)."""

    def __init__(self, message: str, *, code: str, exit_code: int) -> None:
        super().__init__(message, code=code)
        self.exit_code = exit_code


class SourceUnavailableError(IngestError):
    """A source cannot be read as a whole: the SMB server is unreachable
    (``ingest.source_unreachable``), refuses the service account or the share
    (``ingest.source_denied``), or fails mid-walk (``ingest.source_failed``). The sync stops
    without deleting anything."""

    code = "ingest.source_unreachable"


class ParserUnavailableError(IngestError):
    """The parser cannot even start (a missing dependency): no file could be parsed."""

    code = "ingest.parser_unavailable"


class OfflineModelMissingError(IngestError):
    """unstructured asked to download a model; Enclave never downloads at run time."""

    code = "ingest.offline_model"


class FileError(IngestError):
    """Why one file could not be turned into chunks. The sync records ``code`` as the file's
    reason and goes on; :data:`SKIP_CODES` mean *skipped* (nothing to index, retrying will not
    help until the file changes), the others *failed*."""


class UnsupportedFileError(FileError):
    """The file's content (detected from its bytes, not only its name) is not a format we read."""

    code = "ingest.unsupported"


class FileTooLargeError(FileError):
    """The file is bigger than ``ingest.max_file_mb``."""

    code = "ingest.too_large"


class TooMuchTextError(FileError):
    """The file expands into more than the caps allow (``ingest.max_unpacked_mb``,
    ``max_expansion_ratio``, ``max_text_mb``, ``max_chunks_per_file``): a small archive can
    unpack into gigabytes, a small document into tens of thousands of chunks."""

    code = "ingest.too_much_text"


class EncryptedFileError(FileError):
    """The file is password-protected (PDF, Office) and cannot be read without the password."""

    code = "ingest.encrypted"


class EmptyDocumentError(FileError):
    """The file was read but holds no text (blank, images only without OCR, no text layer)."""

    code = "ingest.empty"


class ParseFailedError(FileError):
    """The file claims a supported format but could not be read (corrupt, truncated, timed out)."""

    code = "ingest.parse_failed"


SKIP_CODES = frozenset(
    {
        UnsupportedFileError.code,
        FileTooLargeError.code,
        TooMuchTextError.code,
        EncryptedFileError.code,
        EmptyDocumentError.code,
    }
)
"""File codes that mean "skipped" rather than "failed" in the per-file sync status."""


# Policy ------------------------------------------------------------------------------------


class PolicyError(EnclaveError):
    """Base for policy decisions that refuse a request."""

    code = "policy.denied"
    exit_code = EXIT_DENIED


class AccessDeniedError(PolicyError):
    code = "policy.access_denied"


class AuthenticationError(PolicyError):
    code = "auth.failed"


GENERIC_LOGIN_FAILURE = "invalid user name or password"


class LoginFailed(AuthenticationError):
    """Sign-in refused. ``str()`` is generic; ``detail`` (unknown, bad_password, disabled,
    locked) is for the audit log only, never for the person at the sign-in form."""

    def __init__(self, user: str, detail: str) -> None:
        super().__init__(GENERIC_LOGIN_FAILURE)
        self.user = user
        self.detail = detail


class LicenceError(PolicyError):
    code = "licence.not_accepted"


class LicenceUsageError(LicenceError):
    """``policies licence accept`` cannot record the acceptance as asked (unknown model, missing
    licence files, a statement that does not say what the licence requires)."""

    code = "licence.bad_request"
    exit_code = EXIT_USAGE


class ModelMismatchError(LicenceError):
    """The model file's metadata is not what the profile expects."""

    code = "licence.model_mismatch"


class ModelNotServableError(LicenceError):
    """The licence gate refused the model; ``decision`` is its :class:`Decision`."""

    def __init__(self, decision: Any) -> None:
        super().__init__(decision.message, code=decision.reason_code or LicenceError.code)
        self.decision = decision


class AuditError(EnclaveError):
    code = "audit.error"


class AuditUsageError(AuditError):
    """An audit command asked for something the log refuses (format, retention period)."""

    code = "audit.bad_request"
    exit_code = EXIT_USAGE


class AuditIntegrityError(AuditError):
    """The audit chain does not verify (a record was edited, deleted, inserted or reordered)."""

    code = "audit.tampered"


# Answering ---------------------------------------------------------------------------------


class AssistantError(EnclaveError):
    code = "assistant.error"


class PromptTooLongError(AssistantError):
    """Even without any source the question does not fit into the model's context."""

    code = "assistant.prompt_too_long"


class ConversationNotFoundError(AssistantError):
    """The conversation does not exist or belongs to another user."""

    code = "history.not_found"


class LLMError(EnclaveError):
    code = "llm.error"


class LLMUnavailableError(LLMError):
    code = "llm.unreachable"


class LLMTimeoutError(LLMError):
    code = "llm.timeout"


class ModelFileError(LLMError):
    """The GGUF file is missing, unreadable or not a GGUF file."""

    code = "llm.model_file"
