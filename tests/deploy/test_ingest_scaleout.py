"""Distributed ingestion in the deploy files: ingest workers that scale with replicas, the Redis
broker (internal only, password from a secret, never in an argv), the optional GPU embedding
server, and the flows between them in the network policies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy import deployfiles as files

SERVED_MODEL = "all-MiniLM-L6-v2"  # what the in-process default reports (ingest.encoding.embed)


def _workload(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in files.k8s_kind(kind) if d["metadata"]["name"] == name]
    return doc


def _policy(name: str) -> dict[str, Any]:
    return _workload("NetworkPolicy", name)


def _peers(rules: list[dict[str, Any]], side: str) -> set[tuple[str, int]]:
    out = set()
    for rule in rules:
        for peer in rule[side]:
            name = peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            out |= {(name, p["port"]) for p in rule["ports"]}
    return out


# -- Compose ---------------------------------------------------------------------------------


def test_compose_workers_scale_and_need_only_the_broker() -> None:
    doc = files.compose()
    worker = doc["services"]["ingest-worker"]
    assert worker["command"] == ["ingest", "worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/var/lib/enclave" in worker["tmpfs"]  # nothing of a worker is worth keeping
    mounts = [v for v in worker.get("volumes", []) if isinstance(v, dict)]
    assert not [m for m in mounts if m.get("target") == "/shares/corp"]  # bytes come in tasks
    for name in ("ui", "ingest", "ingest-worker"):  # every process that syncs or works
        svc = doc["services"][name]
        path = svc["environment"]["ENCLAVE_INGEST__BROKER_URL_FILE"]
        assert path.removeprefix("/run/secrets/") in svc["secrets"], name


def test_compose_redis_is_internal_persistent_and_keeps_its_password_out_of_argv() -> None:
    doc = files.compose()
    redis = doc["services"]["redis"]
    assert redis["networks"] == ["app"] and "ports" not in redis
    assert redis["user"] == "999:999" and redis["read_only"] is True
    assert redis["cap_drop"] == ["ALL"] and "no-new-privileges:true" in redis["security_opt"]
    script = redis["entrypoint"][-1]
    assert "requirepass" not in script.split("exec redis-server", 1)[1]  # not on the command line
    assert "/run/secrets/redis_password" in script and "redis_password" in redis["secrets"]
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flag in script, flag
    assert "redis_data:/data" in redis["volumes"]
    assert "PONG" in " ".join(redis["healthcheck"]["test"])


def test_compose_gpu_embedding_server_is_optional_and_serves_the_default_model() -> None:
    embed = files.compose()["services"]["embed"]
    assert embed["profiles"] == ["gpu-embed"]
    args = embed["command"]
    assert args[args.index("--served-model-name") + 1] == SERVED_MODEL
    assert "--auto-truncate" in args  # long chunks are cut like sentence-transformers does
    assert embed["environment"]["HF_HUB_OFFLINE"] == "1"


def test_make_secrets_broker_url_embeds_the_redis_password(tmp_path: Path) -> None:
    script = tmp_path / "make-secrets.sh"
    shutil.copy(files.COMPOSE_FILE.parent / "make-secrets.sh", script)
    subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=60)
    password = (tmp_path / "secrets" / "redis_password").read_text().strip()
    url = (tmp_path / "secrets" / "enclave_broker_url").read_text().strip()
    assert len(password) >= 32 and url == f"redis://:{password}@redis:6379/0"


# -- Kubernetes ------------------------------------------------------------------------------


def test_k8s_workers_scale_with_replicas_and_read_only_the_broker_url() -> None:
    worker = _workload("Deployment", "enclave-ingest-worker")
    assert worker["spec"]["replicas"] >= 2
    spec = files.pod_spec(worker)
    (c,) = spec["containers"]
    assert c["args"] == ["ingest", "worker"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["ENCLAVE_INGEST__BROKER_URL_FILE"] == "/run/secrets/enclave/broker-url"
    processes = int(env["ENCLAVE_INGEST__WORKER_PROCESSES"])
    assert float(c["resources"]["requests"]["cpu"]) >= processes  # one core per process
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["secrets"]["secret"]["items"] == [{"key": "broker-url", "path": "broker-url"}]
    assert not any("persistentVolumeClaim" in v for v in volumes.values())  # no share, no index
    (pdb,) = [
        p
        for p in files.k8s_kind("PodDisruptionBudget")
        if p["metadata"]["name"] == "enclave-ingest-worker"
    ]
    assert pdb["spec"]["selector"] == worker["spec"]["selector"]
    job = _workload("CronJob", "enclave-ingest-corp")
    (jc,) = files.pod_spec(job)["containers"]
    assert {e["name"] for e in jc["env"]} >= {"ENCLAVE_INGEST__BROKER_URL_FILE"}


def test_k8s_redis_is_a_statefulset_with_aof_and_a_secret_password() -> None:
    redis = _workload("StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    (c,) = files.pod_spec(redis)["containers"]
    script = c["args"][0]
    assert "requirepass" not in script.split("exec redis-server", 1)[1]
    assert "--appendonly yes" in script and "--maxmemory-policy noeviction" in script
    (svc,) = [s for s in files.k8s_kind("Service") if s["metadata"]["name"] == "redis"]
    assert svc["spec"]["ports"][0]["port"] == 6379


def test_k8s_only_ingest_processes_reach_the_broker() -> None:
    redis = _policy("redis")
    assert _peers(redis["spec"]["ingress"], "from") == {
        ("enclave-ui", 6379),
        ("enclave-ingest", 6379),
        ("enclave-ingest-worker", 6379),
    }
    assert "egress" not in redis["spec"]
    worker = _policy("enclave-ingest-worker")
    assert _peers(worker["spec"]["egress"], "to") == {("redis", 6379)}
    assert "ingress" not in worker["spec"]  # nothing connects to a worker
    ingest = _policy("enclave-ingest")
    assert ("redis", 6379) in _peers(
        [r for r in ingest["spec"]["egress"] if "podSelector" in r["to"][0]], "to"
    )


def test_k8s_optional_gpu_embedding_server() -> None:
    embed = _workload("Deployment", "embed")
    (c,) = files.pod_spec(embed)["containers"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert c["args"][c["args"].index("--served-model-name") + 1] == SERVED_MODEL
    path = next(p for p, d in files.k8s_documents() if d is embed or d == embed)
    assert path.parent == files.K8S_OPTIONAL  # not applied with manifests/ by default
    assert _peers(_policy("embed")["spec"]["ingress"], "from") == {
        ("enclave-ui", 8080),
        ("enclave-ingest", 8080),
        ("enclave-ingest-worker", 8080),
    }
