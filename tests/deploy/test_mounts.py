"""Every path the app's configuration names exists where the app runs, in each deployment form:
the config and policy files, the secret files, the data dir, the model file the licence gate
hashes (the very file the LLM server serves), and the share the UI reads citations from."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.deploy import deployfiles as files

SHARE = "/shares/corp"
SYSTEMD_SHARE = "/srv/shares/corp"


def _under(path: str, mounts: set[str]) -> bool:
    p = PurePosixPath(path)
    return any(p == PurePosixPath(m) or PurePosixPath(m) in p.parents for m in mounts)


def _named_paths(env: dict[str, str], toml: dict[str, Any]) -> dict[str, str]:
    """setting -> absolute path the app will open (environment over the TOML file)."""
    out = {
        "config": env["ENCLAVE_CONFIG"],
        "data_dir": env.get("ENCLAVE_DATA_DIR", toml.get("data_dir", "")),
        "access_rules": toml["access_rules"],
        "directory": toml["directory"],
        "policy.models_file": toml["policy"]["models_file"],
        "policy.usage_file": toml["policy"]["usage_file"],
        "llm.model_path": env.get("ENCLAVE_LLM__MODEL_PATH", toml["llm"]["model_path"]),
    }
    for name, value in env.items():
        if name.endswith("_FILE") and name.startswith(("ENCLAVE_", "STREAMLIT_")):
            out[name] = value
    out.update({k: v for k, v in env.items() if k == "STREAMLIT_SECRETS_FILES"})
    return out


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with the default (no variable set)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


# -- Compose ---------------------------------------------------------------------------------


def _compose_mounts(svc: dict[str, Any]) -> tuple[set[str], dict[str, str]]:
    """container paths provided, and container path -> host source for binds."""
    targets: set[str] = set()
    binds: dict[str, str] = {}
    for v in svc.get("volumes", []):
        if isinstance(v, str):
            src, dst = _interpolate(v).split(":")[:2]
        else:
            src, dst = v.get("source", ""), v["target"]
        targets.add(dst)
        binds[dst] = _interpolate(src)
    for c in svc.get("configs", []):
        targets.add(c["target"])
    for s in svc.get("secrets", []):
        name = s if isinstance(s, str) else s.get("target", s["source"])
        targets.add(name if name.startswith("/") else f"/run/secrets/{name}")
    targets.update(svc.get("tmpfs", []))
    return targets, binds


@pytest.mark.parametrize("service", ["ui", "ingest"])
def test_compose_mounts_every_path_the_config_names(service: str) -> None:
    doc = files.compose()
    svc = doc["services"][service]
    env = {k: _interpolate(str(v)) for k, v in svc["environment"].items()}
    mounts, binds = _compose_mounts(svc)
    named = _named_paths(env, files.production_toml())
    if service == "ingest":  # the sync neither answers nor hashes the model
        named.pop("llm.model_path")
    missing = {k: p for k, p in named.items() if not _under(p, mounts)}
    assert missing == {}, f"compose {service}: not mounted {missing}"
    if service == "ingest":
        return
    # the model the gate hashes is the file the llama.cpp server serves (same host file)
    llm = doc["services"]["llm"]
    served = llm["command"][llm["command"].index("--model") + 1]
    _, llm_binds = _compose_mounts(llm)
    model = env["ENCLAVE_LLM__MODEL_PATH"]
    assert model == served
    assert binds["/models"] == llm_binds["/models"]


def test_compose_ui_reads_the_share_the_sync_records() -> None:
    doc = files.compose()
    ui_mounts, ui_binds = _compose_mounts(doc["services"]["ui"])
    _, ingest_binds = _compose_mounts(doc["services"]["ingest"])
    assert SHARE in ui_mounts, "citation downloads read the share: the UI must mount it"
    assert ui_binds[SHARE] == ingest_binds[SHARE]
    share = next(v for v in doc["services"]["ui"]["volumes"] if isinstance(v, dict))
    assert share["read_only"] is True


# -- Kubernetes ------------------------------------------------------------------------------


def _workload(name: str) -> dict[str, Any]:
    for kind in ("Deployment", "CronJob"):
        for doc in files.k8s_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["enclave-ui", "enclave-ingest-corp"])
def test_k8s_mounts_every_path_the_config_names(name: str) -> None:
    spec = files.pod_spec(_workload(name))
    (c,) = spec["containers"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    named = _named_paths(env, files.production_toml())
    if name == "enclave-ingest-corp":  # the job neither answers nor hashes the model
        named.pop("llm.model_path")
    missing = {k: p for k, p in named.items() if not _under(p, mounts)}
    assert missing == {}, f"k8s {name}: not mounted {missing}"
    # the config dir carries the policy files (projected from enclave-policies)
    config = next(v for v in spec["volumes"] if v["name"] == "config")
    sources = {s["configMap"]["name"] for s in config["projected"]["sources"]}
    assert sources == {"enclave-config", "enclave-policies"}


def test_k8s_ui_reads_the_share_and_the_served_model() -> None:
    ui = files.pod_spec(_workload("enclave-ui"))
    ingest = files.pod_spec(_workload("enclave-ingest-corp"))
    claim = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in [*ui["volumes"], *ingest["volumes"]]
        if "persistentVolumeClaim" in v
    }
    ui_mounts = {m["mountPath"]: claim.get(m["name"]) for m in ui["containers"][0]["volumeMounts"]}
    job_mounts = {
        m["mountPath"]: claim.get(m["name"]) for m in ingest["containers"][0]["volumeMounts"]
    }
    assert ui_mounts.get(SHARE) == job_mounts[SHARE] == "enclave-share-corp"
    llm = files.pod_spec(_workload("llm"))
    (server,) = llm["containers"]
    served = server["args"][server["args"].index("--model") + 1]
    assert served == files.production_toml()["llm"]["model_path"]
    llm_claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in llm["volumes"]
        if "persistentVolumeClaim" in v
    }
    llm_mounts = {m["mountPath"]: llm_claims.get(m["name"]) for m in server["volumeMounts"]}
    assert ui_mounts["/models"] == llm_mounts["/models"] == "enclave-models"


def test_k8s_read_only_claims_bind_a_prepared_volume() -> None:
    """ReadOnlyMany is offered by file storage (NFS, CephFS), not by the block or local
    provisioners a default StorageClass usually is: each ROX claim binds a PV made for it."""
    pvs = {pv["metadata"]["name"]: pv for pv in files.k8s_kind("PersistentVolume")}
    claims = [c for c in files.k8s_kind("PersistentVolumeClaim")]
    assert {c["metadata"]["name"] for c in claims} >= {"enclave-models", "enclave-share-corp"}
    for claim in claims:
        if "ReadOnlyMany" not in claim["spec"]["accessModes"]:
            continue
        name = claim["metadata"]["name"]
        assert claim["spec"].get("storageClassName") == "", f"{name}: no dynamic provisioning"
        pv = pvs[claim["spec"]["volumeName"]]
        assert "ReadOnlyMany" in pv["spec"]["accessModes"]
        assert pv["spec"]["storageClassName"] == ""
        assert pv["spec"]["nfs"]["readOnly"] is True, name


# -- systemd ---------------------------------------------------------------------------------


def _unit(name: str) -> list[tuple[str, str, str]]:
    return files.unit_settings(files.SYSTEMD_DIR / name)


@pytest.mark.parametrize("unit", ["enclave-ui.service", "enclave-ingest.service"])
def test_systemd_paths_the_config_names_are_installed(unit: str) -> None:
    env = files.unit_environment(files.SYSTEMD_DIR / unit)
    named = _named_paths(env, files.production_toml())
    creds = {v.split(":", 1)[0] for s, k, v in _unit(unit) if k == "LoadCredential"}
    docs = (files.ROOT / "docs" / "deploy.md").read_text()
    for key, path in named.items():
        if path.startswith("%d/"):
            assert path.removeprefix("%d/") in creds, key
        elif path.startswith("/etc/enclave/"):
            assert "/etc/enclave/" in docs  # copied there by the documented install
        elif key == "llm.model_path" and unit == "enclave-ui.service":
            llm = " ".join(v for s, k, v in _unit("enclave-llm.service") if k == "ExecStart")
            argv = shlex.split(llm)
            assert path == argv[argv.index("--model") + 1], "the UI must hash the served model"
            ro = " ".join(v for s, k, v in _unit(unit) if k == "ReadOnlyPaths").split()
            assert _under(path, {p.lstrip("-") for p in ro})
        elif key == "data_dir":
            assert path == "/var/lib/enclave"
    if unit == "enclave-ui.service":
        ro = " ".join(v for s, k, v in _unit(unit) if k == "ReadOnlyPaths").split()
        assert SYSTEMD_SHARE in {p.lstrip("-") for p in ro}, "citations read the share"
