"""Every pod the Kubernetes install creates is admitted by the `restricted` Pod Security level
the namespace enforces: the manifests' pod templates and the Qdrant chart's StatefulSet pod
rendered (by the model in qdrant_chart.py) with the project's values."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.deploy import deployfiles as files
from tests.deploy import podsecurity, qdrant_chart

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")


def _pods() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for _, doc in files.k8s_documents():
        if doc["kind"] in WORKLOADS:
            spec = doc["spec"] if doc["kind"] == "Pod" else files.pod_spec(doc)
            out.append((f"{doc['kind']}/{doc['metadata']['name']}", spec))
    return out


_PODS = _pods()


def test_the_namespace_enforces_restricted() -> None:
    (ns,) = files.k8s_kind("Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {name for name, _ in _PODS} >= {
        "Deployment/enclave-ui",
        "Deployment/llm",
        "CronJob/enclave-ingest-corp",
    }


@pytest.mark.parametrize(("name", "spec"), _PODS, ids=[n for n, _ in _PODS])
def test_manifest_pod_is_admitted_by_restricted(name: str, spec: dict[str, Any]) -> None:
    assert podsecurity.violations(spec) == []


def _values() -> dict[str, Any]:
    data = yaml.safe_load(files.QDRANT_VALUES.read_text())
    assert isinstance(data, dict)
    return data


def test_qdrant_chart_pod_with_project_values_is_admitted_by_restricted() -> None:
    pod = qdrant_chart.statefulset_pod(_values())
    assert [c["name"] for c in pod["containers"]] == ["qdrant"]
    assert podsecurity.violations(pod) == []


def test_qdrant_chart_defaults_alone_are_rejected() -> None:
    """The reason the values must override: the chart's own security contexts fail."""
    bad = podsecurity.violations(qdrant_chart.statefulset_pod({}))
    joined = " | ".join(bad)
    assert "capabilities.drop must include ALL" in joined
    assert "seccompProfile" in joined
    assert "initContainers[ensure-dir-ownership]" in joined


def test_values_merge_like_helm() -> None:
    merged = qdrant_chart.merge_values(
        {"a": {"b": 1, "c": 2}, "d": [1], "e": 1}, {"a": {"c": 3}, "d": [2], "e": None}
    )
    assert merged == {"a": {"b": 1, "c": 3}, "d": [2]}


def test_qdrant_chart_version_and_image_are_pinned() -> None:
    version = qdrant_chart.pinned_chart_version()
    assert version.count(".") == 2 and all(p.isdigit() for p in version.split("."))
    docs = (files.ROOT / "docs" / "deploy.md").read_text()
    assert f"--version {version}" in docs, "docs/deploy.md must install the pinned chart version"
    assert _values()["image"]["tag"].startswith("v1.")


_OK_POD: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "c",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
    "volumes": [{"name": "v", "emptyDir": {}}],
}


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda p: p.__setitem__("hostNetwork", True), "hostNetwork"),
        (lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
        (lambda p: p["volumes"].append({"name": "n", "nfs": {"server": "x"}}), "type nfs"),
        (lambda p: p["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        (lambda p: p["securityContext"].pop("seccompProfile"), "seccompProfile"),
        (
            lambda p: p["securityContext"].__setitem__("seccompProfile", {"type": "Unconfined"}),
            "Unconfined",
        ),
        (lambda p: p["containers"][0]["securityContext"].pop("capabilities"), "drop"),
        (
            lambda p: p["containers"][0]["securityContext"].__setitem__(
                "allowPrivilegeEscalation", True
            ),
            "allowPrivilegeEscalation",
        ),
        (
            lambda p: p["containers"][0]["securityContext"].__setitem__("privileged", True),
            "privileged",
        ),
        (
            lambda p: p["containers"][0]["securityContext"]["capabilities"].__setitem__(
                "add", ["SYS_ADMIN"]
            ),
            "SYS_ADMIN",
        ),
        (lambda p: p["containers"][0].__setitem__("ports", [{"hostPort": 80}]), "hostPort"),
        (lambda p: p.__setitem__("initContainers", [{"name": "i"}]), "initContainers[i]"),
        (lambda p: p["securityContext"].__setitem__("runAsUser", 0), "runAsUser 0"),
    ],
)
def test_checker_rejects_what_restricted_rejects(mutate: Any, expect: str) -> None:
    assert podsecurity.violations(_OK_POD) == []
    pod = copy.deepcopy(_OK_POD)
    mutate(pod)
    bad = podsecurity.violations(pod)
    assert any(expect in b for b in bad), bad
