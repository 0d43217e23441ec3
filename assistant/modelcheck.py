"""Startup check of the model before it serves: GGUF metadata, sha256, licence decision.

For the embedded backend the GGUF is the file llama.cpp loads; for the server backend it is
``llm.model_path``, the same file the server runs, mounted read-only beside the app (the
production profile). We read the GGUF header (name, architecture, context length, chat
template), compare it with the ``llm.expect_*`` settings, hash the file (cached), and ask
``PolicyService.licence.check_servable`` whether that exact file may serve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assistant.gguf import GGUFInfo, read_metadata
from assistant.llm import local_model_path
from core.errors import ModelMismatchError, ModelNotServableError
from core.settings import Settings
from policies.models import file_sha256
from policies.weights_digest import weights_sha256


@dataclass(frozen=True)
class ModelIdentity:
    model_name: str
    path: Path | None
    sha256: str | None
    info: GGUFInfo | None
    decision: Any = None


def model_identity(settings: Settings) -> ModelIdentity:
    cfg = settings.llm
    path = local_model_path(settings) if cfg.backend == "llama_cpp" else cfg.model_path
    name = cfg.model_name
    if path is None:
        return ModelIdentity(name, None, None, None)
    if path.is_dir():  # a weights directory (vLLM): no GGUF header, the manifest's digest
        return ModelIdentity(name, None, weights_sha256(path), None)
    info = read_metadata(path)
    return ModelIdentity(name, path, file_sha256(path), info)


def check_metadata(settings: Settings, info: GGUFInfo) -> None:
    cfg = settings.llm
    problems = []
    if cfg.expect_architecture and info.architecture != cfg.expect_architecture:
        problems.append(
            f"architecture is {info.architecture!r}, expected {cfg.expect_architecture!r}"
        )
    if cfg.expect_context_length and (info.context_length or 0) < cfg.expect_context_length:
        problems.append(
            f"trained context is {info.context_length}, expected >= {cfg.expect_context_length}"
        )
    if cfg.expect_chat_template and cfg.expect_chat_template not in (info.chat_template or ""):
        problems.append(f"chat template does not contain {cfg.expect_chat_template!r}")
    if info.context_length and cfg.context_window > info.context_length:
        problems.append(
            f"llm.context_window {cfg.context_window} exceeds the model's {info.context_length}"
        )
    if problems:
        raise ModelMismatchError(
            f"model file {info.path} ({info.name}) does not match the profile: "
            + "; ".join(problems)
        )


def verify_servable(
    settings: Settings, policies: Any, known: ModelIdentity | None = None
) -> ModelIdentity:
    """Raise :class:`LicenceError` (or a subclass) unless the configured model may serve.

    ``known``: an identity checked before in this process (the header is then not read again;
    the licence gate is still asked and re-hashes a model file whose digest is older than
    ``policy.model_rehash_interval_s``, as this does for a weights directory)."""
    ident = known if known is not None else model_identity(settings)
    weights = settings.llm.model_path
    if known is not None and ident.path is None and weights is not None and weights.is_dir():
        interval = settings.policy.model_rehash_interval_s
        ident = replace(ident, sha256=weights_sha256(weights, interval))
    if ident.info is not None and known is None:
        check_metadata(settings, ident.info)
    decision = policies.licence.check_servable(ident.model_name, ident.path, ident.sha256)
    if not decision.allowed:
        raise ModelNotServableError(decision)
    return replace(ident, decision=decision)
