"""Digest of a model served from a directory of weights (vLLM: safetensors + config files).

A GGUF is one file and its sha256 identifies it (:func:`policies.models.file_sha256`). A
Hugging Face style weights directory is many files, so the approved-models registry records the
sha256 of its *manifest* instead: one ``<sha256>  <relative path>`` line per regular file (the
``sha256sum`` format), sorted by path, hidden files and directories (``.git``, ``.cache``)
left out. An operator computes the same value with standard tools::

    cd /srv/models/Meta-Llama-3-70B-Instruct-AWQ
    find . -type f ! -path '*/.*' -printf '%P\\n' | LC_ALL=C sort \\
        | xargs -d '\\n' sha256sum | sha256sum

Any change to any weight, tokenizer or config file changes the digest, so the licence gate
refuses a directory that is not the one the administrator approved.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.errors import ConfigError
from policies.models import file_sha256


def weights_manifest(directory: Path, max_age_s: float | None = None) -> str:
    """The ``sha256sum``-format manifest of every non-hidden regular file under ``directory``
    (file digests cached as :func:`policies.models.file_sha256` says)."""
    if not directory.is_dir():
        raise ConfigError(f"model weights directory {directory} does not exist")
    files = sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    if not files:
        raise ConfigError(f"model weights directory {directory} holds no files")
    return "".join(f"{file_sha256(directory / rel, max_age_s)}  {rel}\n" for rel in files)


def weights_sha256(path: Path, max_age_s: float | None = None) -> str:
    """sha256 of a GGUF file, or of the manifest of a weights directory."""
    if path.is_dir():
        return hashlib.sha256(weights_manifest(path, max_age_s).encode()).hexdigest()
    return file_sha256(path, max_age_s)
