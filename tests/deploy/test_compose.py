"""The compose stack: valid against the Compose specification schema, and shaped as promised
(internal network for the engines, secrets from files, read-only share, GPU reservations)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy import deployfiles as files

# compose-spec.json (Apache-2.0) as vendored by check-jsonschema (its
# builtin_schemas/vendor, licence in vendor/licenses/LICENSE.compose-spec): offline, pinned by
# the installed package version rather than fetched.
_SCHEMA_PKG = "check_jsonschema.builtin_schemas.vendor"


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((resources.files(_SCHEMA_PKG) / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(doc: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(doc)
    ]


def test_schema_is_the_vendored_compose_spec_with_its_licence() -> None:
    licence = resources.files(_SCHEMA_PKG) / "licenses" / "LICENSE.compose-spec"
    assert "Apache License" in licence.read_text()
    schema = json.loads((resources.files(_SCHEMA_PKG) / "compose-spec.json").read_text())
    assert "services" in schema["properties"]


def test_compose_file_validates_against_compose_spec() -> None:
    assert _errors(files.compose()) == []


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["services"]["ui"].__setitem__("restartt", "always"), "services/ui"),
        (lambda d: d["services"]["llm"].__setitem__("ports", "8080"), "services/llm/ports"),
        (lambda d: d["networks"]["app"].__setitem__("internall", True), "networks/app"),
    ],
)
def test_schema_rejects_a_broken_compose_file(mutate: Any, where: str) -> None:
    doc = copy.deepcopy(files.compose())
    mutate(doc)
    errors = _errors(doc)
    assert errors and any(e.startswith(where) for e in errors), errors


def test_engines_live_only_on_the_internal_network() -> None:
    doc = files.compose()
    assert doc["networks"]["app"]["internal"] is True
    for name in ("qdrant", "postgres", "llm", "vllm", "redis", "embed"):
        svc = doc["services"][name]
        assert svc["networks"] == ["app"], name
        assert "ports" not in svc, f"{name} must not publish ports"
    ui = doc["services"]["ui"]
    assert set(ui["networks"]) == {"app", "front"}
    assert all(str(p).startswith("127.0.0.1:") for p in ui["ports"]), ui["ports"]


def test_secrets_come_from_files_never_inline() -> None:
    doc = files.compose()
    assert doc["secrets"], "no secrets declared"
    for name, spec in doc["secrets"].items():
        assert set(spec) == {"file"}, f"secret {name} must be a file"
        assert spec["file"].startswith("./secrets/")
    secretish = re.compile(r"PASSWORD|API_KEY|SECRET|TOKEN|DATABASE_URL", re.I)
    for svc_name, svc in doc["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if secretish.search(key):
                assert key.endswith(("_FILE", "_FILES")), f"{svc_name}: {key} must name a file"
                assert str(value).startswith("/run/secrets/"), f"{svc_name}: {key} = {value}"
    # the app reads each secret through an ENCLAVE_*_FILE variable naming a mounted secret
    ui = doc["services"]["ui"]
    for key in (
        "ENCLAVE_DATABASE_URL_FILE",
        "ENCLAVE_INDEX__QDRANT_API_KEY_FILE",
        "ENCLAVE_LLM__API_KEY_FILE",
    ):
        secret = ui["environment"][key].removeprefix("/run/secrets/")
        assert secret in ui["secrets"], key
    assert doc["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"]


def test_share_is_mounted_read_only_for_the_scheduled_sync() -> None:
    ingest = files.compose()["services"]["ingest"]
    share = [v for v in ingest["volumes"] if isinstance(v, dict) and v["target"] == "/shares/corp"]
    assert share and share[0]["read_only"] is True
    script = " ".join(ingest["command"])
    assert "ingest sync /shares/corp --source corp" in script and "sleep" in script


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_llama_server_slots_each_get_the_llama3_context() -> None:
    llm = files.compose()["services"]["llm"]
    args = [str(a) for a in llm["command"]]
    slots = int(_arg(args, "--parallel"))
    assert slots >= 2
    assert int(_arg(args, "--ctx-size")) == slots * files.LLAMA3_CONTEXT
    assert _arg(args, "--alias") == files.production_toml()["llm"]["model_name"]
    assert _arg(args, "--model").endswith("Q4_K_M.gguf")
    assert "--api-key-file" in args
    devices = llm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and len(devices[0]["device_ids"]) == 1


def _default(value: str) -> str:
    """Compose's ${VAR:-default} with no VAR set."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def test_gpus_are_named_and_never_shared_between_llm_servers() -> None:
    """`count: N` means GPUs 0..N-1 in every container (Docker tracks nothing across them), so
    the vLLM profile (or the GPU embedding server) beside the llama.cpp server would double up
    on GPU 0."""
    doc = files.compose()
    taken: dict[str, str] = {}
    for name in ("llm", "vllm", "embed"):
        (dev,) = doc["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert "count" not in dev, f"{name}: reserve GPUs by device_ids, not count"
        for gpu in dev["device_ids"]:
            assert re.fullmatch(r"\$\{ENCLAVE_[A-Z_]+_GPU(_[AB])?:-\d+\}", gpu), gpu
            assert _default(gpu) not in taken, f"GPU {_default(gpu)}: {name} and {taken}"
            taken[_default(gpu)] = name


def test_llm_endpoint_and_model_are_set_from_the_environment() -> None:
    env = files.compose()["services"]["ui"]["environment"]
    assert env["ENCLAVE_LLM__BASE_URL"] == "${ENCLAVE_LLM_BASE_URL:-http://llm:8080/v1}"
    assert _default(env["ENCLAVE_LLM__MODEL_PATH"]) == files.production_toml()["llm"]["model_path"]
    assert env["ENCLAVE_LLM__MODEL_PATH"].startswith("${ENCLAVE_LLM_MODEL_PATH:-")


def test_loop_has_an_init_and_qdrant_is_checked_over_http() -> None:
    doc = files.compose()
    assert doc["services"]["ingest"]["init"] is True
    check = " ".join(doc["services"]["qdrant"]["healthcheck"]["test"])
    assert "GET /readyz" in check and " 200" in check
    assert doc["services"]["qdrant"]["image"].startswith("qdrant/qdrant:v1.19.")
    vllm = doc["services"]["vllm"]["image"]
    major, minor = (int(x) for x in vllm.rsplit(":v", 1)[1].split(".")[:2])
    assert (major, minor) >= (0, 26), vllm


def test_vllm_profile_is_tensor_parallel_with_the_same_model_name() -> None:
    vllm = files.compose()["services"]["vllm"]
    assert vllm["profiles"] == ["vllm"]
    script = vllm["entrypoint"][-1]
    tp = int(re.search(r"--tensor-parallel-size (\d+)", script).group(1))  # type: ignore[union-attr]
    assert tp >= 2
    assert len(vllm["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]) == tp
    assert f"--max-model-len {files.LLAMA3_CONTEXT}" in script
    name = files.production_toml()["llm"]["model_name"]
    assert f"--served-model-name {name}" in script


def test_app_containers_run_unprivileged() -> None:
    doc = files.compose()
    for name in ("ui", "ingest", "ingest-worker"):
        svc = doc["services"][name]
        assert svc["user"] == "10001:10001"
        assert svc["read_only"] is True
        assert "no-new-privileges:true" in svc["security_opt"]
        assert svc["cap_drop"] == ["ALL"]


def test_make_secrets_creates_consistent_files_only_the_deployer_can_reach(tmp_path: Path) -> None:
    script = tmp_path / "make-secrets.sh"
    shutil.copy(files.COMPOSE_FILE.parent / "make-secrets.sh", script)
    for _ in range(2):  # a second run keeps the existing secrets
        subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=60)
    secrets = tmp_path / "secrets"
    declared = {Path(s["file"]).name for s in files.compose()["secrets"].values()}
    assert {p.name for p in secrets.iterdir()} == declared
    # the directory keeps other host users out; the files must be readable by whatever uid
    # the container that mounts one runs as (tests/deploy/test_secret_access.py)
    assert secrets.stat().st_mode & 0o077 == 0, "secrets/ is reachable by other users"
    for path in secrets.iterdir():
        assert path.stat().st_mode & 0o444 == 0o444, f"{path.name} is not readable in containers"
        assert len(path.read_text().strip()) >= 32
    password = (secrets / "postgres_password").read_text().strip()
    url = (secrets / "enclave_database_url").read_text().strip()
    assert url == f"postgresql://enclave:{password}@postgres:5432/enclave"
    assert (secrets / "qdrant_api_key").read_text() != (secrets / "llm_api_key").read_text()
    assert 'cookie_secret = "' in (secrets / "streamlit_secrets.toml").read_text()
