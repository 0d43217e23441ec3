"""Kubernetes manifests: valid against the bundled Kubernetes schemas (strict), and shaped as
promised (probes, GPU requests, read-only share, default-deny network policies)."""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy import deployfiles as files

# The oldest Kubernetes release still commonly run on-premises, and the newest one bundled.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


def _ids(docs: list[tuple[Any, dict[str, Any]]]) -> list[str]:
    return [f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in docs]


# Gateway API kinds are CRDs: kubernetes-validate bundles no schema for them (checked below).
GATEWAY_API = "gateway.networking.k8s.io/v1"
_DOCS = [(p, d) for p, d in files.k8s_documents() if d["apiVersion"] != GATEWAY_API]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("path", "doc"), _DOCS, ids=_ids(_DOCS))
def test_manifest_validates_strictly(path: Any, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_ui_is_published_through_the_gateway_api() -> None:
    """ingress-nginx is retired: a Gateway + HTTPRoute (v1), no Ingress in the manifests."""
    kinds = {d["kind"]: d for _, d in files.k8s_documents() if d["apiVersion"] == GATEWAY_API}
    assert set(kinds) == {"Gateway", "HTTPRoute"}
    assert not files.k8s_kind("Ingress")
    gw, route = kinds["Gateway"], kinds["HTTPRoute"]
    (listener,) = gw["spec"]["listeners"]
    assert listener["protocol"] == "HTTPS" and listener["tls"]["mode"] == "Terminate"
    assert listener["tls"]["certificateRefs"][0]["name"] == "enclave-tls"
    assert route["spec"]["parentRefs"] == [{"name": gw["metadata"]["name"], "sectionName": "https"}]
    (rule,) = route["spec"]["rules"]
    (backend,) = rule["backendRefs"]
    (svc,) = [s for s in files.k8s_kind("Service") if s["metadata"]["name"] == backend["name"]]
    assert backend["port"] in {p["port"] for p in svc["spec"]["ports"]}
    assert rule["sessionPersistence"]["type"] == "Cookie"  # Streamlit sessions are per replica
    assert rule["timeouts"]["request"] == "0s"  # websockets stay open
    example = files.DEPLOY / "k8s" / "examples" / "ingress.yaml"
    (ingress,) = yaml.safe_load_all(example.read_text())
    kubernetes_validate.validate(ingress, K8S_VERSIONS[-1], strict=True)
    assert "nginx.ingress.kubernetes.io" not in example.read_text()


def test_applying_the_manifests_never_touches_secrets() -> None:
    """`kubectl apply -f manifests/` must not overwrite the real Secrets with placeholders: every
    Secret a pod or the Qdrant values read is created by a documented command instead."""
    assert files.k8s_kind("Secret") == []
    docs = (files.ROOT / "docs" / "deploy.md").read_text()
    created: dict[str, set[str]] = {}
    for m in re.finditer(r"create secret (?:generic|tls) (\S+)((?:[^\n]*\\\n)*[^\n]*)", docs):
        keys = set(re.findall(r"--from-file=([\w.-]+)=", m.group(2)))
        if "create secret tls" in m.group(0):
            keys = {"tls.crt", "tls.key"}
        created.setdefault(m.group(1), set()).update(keys)
    needed: set[tuple[str, str]] = set()
    for kind in ("Deployment", "CronJob"):
        for doc in files.k8s_kind(kind):
            spec = files.pod_spec(doc)
            for vol in spec.get("volumes", []):
                if "secret" in vol:
                    items = vol["secret"].get("items") or [{"key": "*"}]
                    needed |= {(vol["secret"]["secretName"], i["key"]) for i in items}
            for c in spec["containers"]:
                for e in c.get("env", []):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        needed.add((ref["name"], ref["key"]))
    for e in yaml.safe_load(files.QDRANT_VALUES.read_text())["env"]:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            needed.add((ref["name"], ref["key"]))
    for name, key in sorted(needed):
        assert name in created, f"no documented `kubectl create secret` for {name}"
        assert key == "*" or key in created[name], f"{name} is created without key {key}"
    assert {"enclave-secrets", "enclave-audit-keys", "enclave-streamlit-auth"} <= set(created)


def test_validation_rejects_a_broken_manifest() -> None:
    ui = copy.deepcopy(files.k8s_kind("Deployment")[0])
    ui["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ui, K8S_VERSIONS[-1], strict=True)
    ui = copy.deepcopy(files.k8s_kind("Deployment")[0])
    ui["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ui, K8S_VERSIONS[-1], strict=True)


def _workload(name: str) -> dict[str, Any]:
    for kind in ("Deployment", "CronJob"):
        for doc in files.k8s_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no workload {name}")


def test_ui_deployment_probes_streamlit_health_and_sets_resources() -> None:
    ui = _workload("enclave-ui")
    assert ui["spec"]["replicas"] >= 2
    (container,) = files.pod_spec(ui)["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/_stcore/health", probe
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]


def test_every_container_is_unprivileged_with_requests() -> None:
    for kind in ("Deployment", "CronJob"):
        for doc in files.k8s_kind(kind):
            spec = files.pod_spec(doc)
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["automountServiceAccountToken"] is False
            for c in spec["containers"]:
                assert c["resources"]["requests"], c["name"]
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False
                assert sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"]["drop"] == ["ALL"]


def test_llm_server_requests_a_gpu_and_gives_each_slot_8k() -> None:
    llm = _workload("llm")
    (container,) = files.pod_spec(llm)["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    args = container["args"]
    slots = int(args[args.index("--parallel") + 1])
    assert int(args[args.index("--ctx-size") + 1]) == slots * files.LLAMA3_CONTEXT


def test_ingest_cronjob_mounts_the_share_read_only() -> None:
    job = _workload("enclave-ingest-corp")
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = files.pod_spec(job)
    (container,) = spec["containers"]
    assert container["args"][:2] == ["ingest", "sync"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "share")
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == "share")
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    pv = files.k8s_kind("PersistentVolume")[0]
    assert pv["spec"]["accessModes"] == ["ReadOnlyMany"] and pv["spec"]["nfs"]["readOnly"] is True


def _policy(name: str) -> dict[str, Any]:
    return next(p for p in files.k8s_kind("NetworkPolicy") if p["metadata"]["name"] == name)


def test_network_policies_default_deny_and_ui_reaches_only_its_backends() -> None:
    deny = _policy("default-deny-all")
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {
        "Ingress",
        "Egress",
    }
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    ui = _policy("enclave-ui")
    targets = []
    for rule in ui["spec"]["egress"]:
        for peer in rule["to"]:
            if "podSelector" in peer:
                targets.append(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
            else:
                targets.append(f"ipBlock:{rule['ports'][0]['port']}")
    assert sorted(targets) == ["enclave-llm", "ipBlock:443", "ipBlock:5432", "qdrant", "redis"]
    llm = _policy("llm")
    (rule,) = llm["spec"]["ingress"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in rule["from"]] == [
        "enclave-ui"
    ]
    assert "egress" not in llm["spec"]  # no egress at all from the LLM server


def test_configmap_carries_the_production_profile_verbatim() -> None:
    (cm,) = [c for c in files.k8s_kind("ConfigMap") if c["metadata"]["name"] == "enclave-config"]
    assert tomllib.loads(cm["data"]["enclave.toml"]) == files.production_toml()


def test_qdrant_values_run_the_official_chart_distributed() -> None:
    values = yaml.safe_load(files.QDRANT_VALUES.read_text())
    assert values["config"]["cluster"]["enabled"] is True
    assert values["replicaCount"] >= 3
    collection = values["config"]["storage"]["collection"]
    assert collection["replication_factor"] >= 2
    assert collection["shard_number_per_node"] >= 1
    assert values["apiKey"] is False
    env = {e["name"]: e for e in values["env"]}
    ref = env["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "enclave-secrets", "key": "qdrant-api-key"}
    assert values["image"]["tag"].startswith("v1.19.")  # per-query IDF corpus (scoped_idf)


def test_dns_reaches_nodelocal_dnscache_and_the_ui_its_identity_provider() -> None:
    dns = _policy("allow-dns")
    (rule,) = dns["spec"]["egress"]
    blocks = {p["ipBlock"]["cidr"] for p in rule["to"] if "ipBlock" in p}
    assert "169.254.20.10/32" in blocks  # NodeLocal DNSCache's link-local address
    assert any("podSelector" in p for p in rule["to"])  # and CoreDNS itself
    ui = _policy("enclave-ui")
    https = [r for r in ui["spec"]["egress"] if [p["port"] for p in r["ports"]] == [443]]
    assert https and "ipBlock" in https[0]["to"][0]
    (src,) = ui["spec"]["ingress"][0]["from"]
    assert src["namespaceSelector"]["matchLabels"] == {"enclave.io/gateway": "true"}


def test_llm_scales_out_across_gpu_nodes() -> None:
    llm = _workload("llm")
    assert llm["spec"]["replicas"] >= 2
    assert llm["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    spec = files.pod_spec(llm)
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    (pdb,) = [p for p in files.k8s_kind("PodDisruptionBudget") if p["metadata"]["name"] == "llm"]
    assert pdb["spec"]["selector"] == llm["spec"]["selector"]
    (svc,) = [s for s in files.k8s_kind("Service") if s["metadata"]["name"] == "llm"]
    assert svc["spec"]["sessionAffinity"] == "ClientIP"  # a UI replica keeps to one server
