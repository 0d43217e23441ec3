"""The pod template Qdrant's official Helm chart renders from a values file: a model of the
chart's ``templates/statefulset.yaml`` for everything a Pod Security check reads (security
contexts, init containers, volumes), plus helm's values merge.

Why a model and not the chart: there is no ``helm`` binary here, and the chart's templates may
not be copied into this repository. The facts below were read from qdrant/qdrant-helm
(``charts/qdrant/values.yaml`` and ``templates/statefulset.yaml``, a 1.13.5+ revision of the
template; the 1.16.x releases' changelog adds only a PVC volumeAttributesClass, a ServiceMonitor
auth option and an env default fix, nothing that touches pods' security). With ``helm`` at
hand, the same check runs on the real output: docs/deploy.md, "What CI checks".
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.deploy import deployfiles as files

# Chart defaults that decide the pod's security (charts/qdrant/values.yaml).
CHART_DEFAULTS: dict[str, Any] = {
    "image": {"repository": "docker.io/qdrant/qdrant", "tag": "", "useUnprivilegedImage": False},
    "containerSecurityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 2000,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
    },
    "podSecurityContext": {"fsGroup": 3000, "fsGroupChangePolicy": "Always"},
    "updateVolumeFsOwnership": True,
    "snapshotPersistence": {"enabled": False},
    "apiKey": False,
    "readOnlyApiKey": False,
    "sidecarContainers": [],
    "additionalVolumes": [],
}


def merge_values(defaults: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """helm's coalescing of a values file over the chart's values: maps merge key by key,
    anything else replaces, and an explicit null deletes the chart's key."""
    out = copy.deepcopy(defaults)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def statefulset_pod(values: dict[str, Any]) -> dict[str, Any]:
    """The StatefulSet's pod spec as the template builds it (security-relevant parts)."""
    v = merge_values(CHART_DEFAULTS, values)
    image = v["image"]
    tag = image.get("tag") or "appVersion"
    csc = v.get("containerSecurityContext") or {}
    pod: dict[str, Any] = {}
    # initContainers: `ensure-dir-ownership` (chown -R) when updateVolumeFsOwnership and
    # containerSecurityContext.runAsUser are set; the template gives it no securityContext.
    if v.get("updateVolumeFsOwnership") and csc.get("runAsUser"):
        pod["initContainers"] = [
            {
                "name": "ensure-dir-ownership",
                "image": f"{image['repository']}:{tag}",
                "command": ["chown", "-R", f"{csc['runAsUser']}:?", "/qdrant/storage"],
            }
        ]
    main: dict[str, Any] = {
        "name": "qdrant",
        "image": f"{image['repository']}:{tag}"
        + ("-unprivileged" if image.get("useUnprivilegedImage") else ""),
    }
    if csc:  # {{- with .Values.containerSecurityContext }}
        main["securityContext"] = copy.deepcopy(csc)
    pod["containers"] = [*copy.deepcopy(v.get("sidecarContainers") or []), main]
    if v.get("podSecurityContext"):  # {{- with .Values.podSecurityContext }}
        pod["securityContext"] = copy.deepcopy(v["podSecurityContext"])
    volumes: list[dict[str, Any]] = [
        {"name": "qdrant-config", "configMap": {"name": "qdrant", "defaultMode": 0o755}},
        {"name": "qdrant-init", "emptyDir": {}},
    ]
    if not (v.get("snapshotPersistence") or {}).get("enabled"):
        volumes.append({"name": "qdrant-snapshots", "emptyDir": {}})
    if v.get("apiKey") or v.get("readOnlyApiKey"):
        volumes.append({"name": "qdrant-secret", "secret": {"secretName": "qdrant-apikey"}})
    volumes.extend(copy.deepcopy(v.get("additionalVolumes") or []))
    pod["volumes"] = volumes
    return pod


def pinned_chart_version() -> str:
    """The chart version the values file pins (its ``# chart-version:`` line)."""
    m = re.search(r"^# chart-version: (\S+)", files.QDRANT_VALUES.read_text(), re.M)
    assert m is not None, "qdrant-values.yaml names no chart-version"
    return m.group(1)
