"""Every ENCLAVE_* variable and TOML key the deploy files set exists in the app's settings and
loads: compose services, Kubernetes containers and ConfigMap, systemd units, the Dockerfile."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from core.errors import ConfigError
from core.settings import CONFIG_ENV, Settings, load_settings
from tests.deploy import deployfiles as files


def _contexts() -> dict[str, tuple[dict[str, str], str | None]]:
    """name -> (environment, TOML text the context mounts as its config)."""
    production = files.PRODUCTION_TOML.read_text()
    out: dict[str, tuple[dict[str, str], str | None]] = {}
    compose = files.compose()
    compose_toml = files.COMPOSE_FILE.parent / compose["configs"]["enclave_toml"]["file"]
    for name in ("ui", "ingest"):
        env = {k: str(v) for k, v in compose["services"][name]["environment"].items()}
        out[f"compose:{name}"] = (env, compose_toml.resolve().read_text())
    # the upgrade job runs with the OLD install's settings: no config file, its data dir
    migrate_env = {k: str(v) for k, v in compose["services"]["migrate"]["environment"].items()}
    out["compose:migrate"] = (migrate_env, None)
    (cm,) = [c for c in files.k8s_kind("ConfigMap") if c["metadata"]["name"] == "enclave-config"]
    for kind in ("Deployment", "CronJob"):
        for doc in files.k8s_kind(kind):
            for c in files.pod_spec(doc)["containers"]:
                env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
                if any(k.startswith("ENCLAVE_") for k in env):
                    out[f"k8s:{doc['metadata']['name']}"] = (env, cm["data"]["enclave.toml"])
    for unit in files.SYSTEMD_DIR.glob("enclave-*.service"):
        env = files.unit_environment(unit)
        if any(k.startswith("ENCLAVE_") for k in env):
            out[f"systemd:{unit.stem}"] = (env, production)
    out["docker:runtime"] = (files.dockerfile_env(), production)
    return out


_CONTEXTS = _contexts()


def _field_path(model: type[BaseModel], path: list[str]) -> str | None:
    """None when ``path`` names a field of ``model`` (nested sections), else the bad key."""
    fields = model.model_fields
    head, rest = path[0], path[1:]
    if head not in fields:
        return head
    if not rest:
        return None
    annotation = fields[head].annotation
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return ".".join(path)
    return _field_path(annotation, rest)


def _toml_paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[list[str]]:
    paths: list[list[str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            paths.extend(_toml_paths(value, (*prefix, key)))
        else:
            paths.append([*prefix, key])
    return paths


def test_the_deploy_files_were_all_found() -> None:
    assert {"compose:ui", "compose:ingest", "k8s:enclave-ui", "k8s:enclave-ingest-corp"} <= set(
        _CONTEXTS
    )
    assert {"systemd:enclave-ui", "systemd:enclave-ingest", "docker:runtime"} <= set(_CONTEXTS)


@pytest.mark.parametrize("context", sorted(_CONTEXTS))
def test_every_enclave_variable_and_toml_key_exists(context: str) -> None:
    env, toml_text = _CONTEXTS[context]
    bad = []
    for name in env:
        if not name.startswith("ENCLAVE_") or name == CONFIG_ENV:
            continue
        path = name.removeprefix("ENCLAVE_").lower().split("__")
        wrong = _field_path(Settings, path)
        if wrong is not None:
            bad.append(f"{name} ({wrong})")
    if toml_text is not None:
        for path in _toml_paths(tomllib.loads(toml_text)):
            wrong = _field_path(Settings, path)
            if wrong is not None:
                bad.append(f"toml {'.'.join(path)} ({wrong})")
    assert bad == [], f"{context}: unknown settings keys {bad}"


@pytest.mark.parametrize("context", sorted(_CONTEXTS))
def test_context_loads_with_load_settings(
    context: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, toml_text = _CONTEXTS[context]
    config = tmp_path / "enclave.toml"
    config.write_text(toml_text or "")
    for name, value in env.items():
        if not name.startswith("ENCLAVE_"):
            continue
        if name == CONFIG_ENV:
            value = str(config) if toml_text is not None else value
        elif name.endswith("_FILE"):
            # secret files (/run/secrets/..., systemd's %d/...) exist only where the app runs
            secret = tmp_path / name.lower()
            secret.write_text(f"value-of-{name}\n")
            value = str(secret)
        monkeypatch.setenv(name, value)
    settings = load_settings()
    if toml_text is None:  # the old embedded install the upgrade job reads
        assert env[CONFIG_ENV] == "/dev/null" and str(settings.config) == "/dev/null"
        assert settings.index.backend == "edge" and settings.database_url is None
        assert str(settings.data_dir) == env["ENCLAVE_DATA_DIR"]
        return
    assert settings.config == config.resolve()
    toml = tomllib.loads(toml_text)
    assert settings.index.backend == toml["index"]["backend"] == "qdrant"
    assert settings.llm.backend == "openai"
    if "ENCLAVE_DATABASE_URL_FILE" in env:
        assert settings.database_url == "value-of-ENCLAVE_DATABASE_URL_FILE"
    if "ENCLAVE_INDEX__QDRANT_API_KEY_FILE" in env:
        key = settings.index.qdrant_api_key
        assert key is not None
        assert key.get_secret_value() == "value-of-ENCLAVE_INDEX__QDRANT_API_KEY_FILE"
    if "ENCLAVE_LLM__API_KEY_FILE" in env:
        assert settings.llm.api_key is not None
    if "ENCLAVE_INDEX__QDRANT_URL" in env:
        assert settings.index.qdrant_url == env["ENCLAVE_INDEX__QDRANT_URL"]


def test_an_unknown_key_in_a_deploy_file_would_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "enclave.toml"
    config.write_text(files.PRODUCTION_TOML.read_text().replace("[llm]", "[llm]\nctx = 1"))
    with pytest.raises(ConfigError, match=r"llm\.ctx"):
        load_settings(config)
    assert _field_path(Settings, ["index", "qdrant_api_key_fil"]) == "qdrant_api_key_fil"
    monkeypatch.setenv("ENCLAVE_INDEX__QDRANT_API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot read secret file"):
        load_settings(files.PRODUCTION_TOML)
