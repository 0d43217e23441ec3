"""A checker for the Kubernetes Pod Security Standard ``restricted`` (policy version latest),
applied to a pod spec: the rules the namespace's admission (pod-security.kubernetes.io/enforce:
restricted) applies, written down from the standard (kubernetes.io, "Pod Security Standards").

It covers every control of the baseline and restricted levels that a pod template can state:
host namespaces, privileged containers, capabilities, hostPath and other volume types, host
ports, AppArmor, SELinux, /proc mount, seccomp, sysctls, privilege escalation, running as
non-root and as a non-zero uid. Windows-only fields (hostProcess) are checked too.
"""

from __future__ import annotations

from typing import Any

# restricted: only these volume types
ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# baseline: the "safe" sysctls
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
GOOD_SECCOMP = {"RuntimeDefault", "Localhost"}


def _containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or []:
            out.append((f"{field}[{c.get('name', '?')}]", c))
    return out


def violations(spec: dict[str, Any]) -> list[str]:
    """What the ``restricted`` level rejects in pod spec ``spec`` (empty list: admitted)."""
    bad: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)

    # -- baseline ------------------------------------------------------------------------
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            bad.append(f"{field}: true")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        bad.append("securityContext.windowsOptions.hostProcess: true")
    for name, c in containers:
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            bad.append(f"{name}: privileged")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            bad.append(f"{name}: hostProcess")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                bad.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            bad.append(f"{name}: procMount {sc['procMount']}")
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            bad.append(f"{name}: appArmorProfile {apparmor}")
    contexts = [("pod", pod_sc)] + [(n, c.get("securityContext") or {}) for n, c in containers]
    for where, sc in contexts:
        se = sc.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES:
            bad.append(f"{where}: seLinuxOptions.type {se['type']}")
        if se.get("user") or se.get("role"):
            bad.append(f"{where}: seLinuxOptions user/role set")
    pod_apparmor = (pod_sc.get("appArmorProfile") or {}).get("type")
    if pod_apparmor not in (None, "RuntimeDefault", "Localhost"):
        bad.append("pod: appArmorProfile not RuntimeDefault/Localhost")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            bad.append(f"pod: sysctl {sysctl.get('name')}")

    # -- volumes (hostPath is baseline; the allow-list is restricted) --------------------------
    for vol in spec.get("volumes") or []:
        kinds = [k for k in vol if k != "name"]
        for kind in kinds:
            if kind not in ALLOWED_VOLUME_TYPES:
                bad.append(f"volume {vol.get('name')}: type {kind} not allowed")

    # -- restricted ----------------------------------------------------------------------
    pod_nonroot = pod_sc.get("runAsNonRoot")
    if pod_sc.get("runAsUser") == 0:
        bad.append("pod: runAsUser 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in GOOD_SECCOMP:
        bad.append(f"pod: seccompProfile {pod_seccomp}")
    for name, c in containers:
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation must be false")
        nonroot = sc.get("runAsNonRoot")
        if nonroot is False or (nonroot is None and pod_nonroot is not True):
            bad.append(f"{name}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            bad.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in GOOD_SECCOMP:
            bad.append(f"{name}: seccompProfile {seccomp}")
        if seccomp is None and pod_seccomp is None:
            bad.append(f"{name}: no seccompProfile (pod or container: RuntimeDefault/Localhost)")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{name}: capabilities.drop must include ALL")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            bad.append(f"{name}: capabilities.add {sorted(extra)}")
    return bad
