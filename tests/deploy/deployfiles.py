"""Readers for the files under deploy/ that the deploy tests check (no network, no Docker)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
K8S_MANIFESTS = DEPLOY / "k8s" / "manifests"
K8S_OPTIONAL = DEPLOY / "k8s" / "optional"  # applied on purpose (the GPU embedding server)
QDRANT_VALUES = DEPLOY / "k8s" / "helm" / "qdrant-values.yaml"
SYSTEMD_DIR = DEPLOY / "systemd"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
PRODUCTION_TOML = DEPLOY / "config" / "enclave.production.toml"

# Per-slot context the production profile promises (Llama 3: 8,192 tokens).
LLAMA3_CONTEXT = 8192


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes document: manifests/ and the optional ones (held to the same rules)."""
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in [*sorted(K8S_MANIFESTS.glob("*.yaml")), *sorted(K8S_OPTIONAL.glob("*.yaml"))]:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def production_toml() -> dict[str, Any]:
    return tomllib.loads(PRODUCTION_TOML.read_text())


def systemd_units() -> list[Path]:
    return sorted([*SYSTEMD_DIR.glob("*.service"), *SYSTEMD_DIR.glob("*.timer")])


def unit_settings(path: Path) -> list[tuple[str, str, str]]:
    """``(section, key, value)`` of a unit file, with continuation lines joined."""
    out: list[tuple[str, str, str]] = []
    section = ""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_environment(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for section, key, value in unit_settings(path):
        if section == "Service" and key == "Environment":
            name, _, val = value.partition("=")
            env[name] = val
    return env


def dockerfile_env() -> dict[str, str]:
    """``ENV`` assignments of the runtime stage (``KEY=value`` form, continuation lines)."""
    # Docker drops comment lines before joining continuation lines; do the same.
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    runtime = text.split("AS runtime", 1)[1]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for m in re.finditer(r"([A-Z_][A-Z0-9_]*)=(\S+)", line):
                env[m.group(1)] = m.group(2)
    return env
