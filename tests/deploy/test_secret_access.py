"""Each secret can be read by the user its container runs as, and by no other host user.

Compose (no Swarm) bind-mounts a file secret with the host file's owner and mode, so what a
container can read follows from the numbers: the file's uid/gid/mode and the container's
uid/gids. Kubernetes Secret volumes are root-owned files whose group becomes the pod's fsGroup
(the kubelet then adds group read), with the volume's mode. Both are computed here; for
Compose the files are also created with make-secrets.sh and opened for real as each container's
uid/gid would (a forked child with setresuid, through /proc/self/fd: the bind mount exposes the
file, not the directory above it).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import deployfiles as files

# uid, gids of each compose service's process when it reads its secrets. `user:` in compose
# wins; otherwise the image's user: Qdrant's -unprivileged image runs as 1000:1000, the
# postgres entrypoint drops to postgres (999:999) before it reads POSTGRES_PASSWORD_FILE, the
# llama.cpp and vLLM images run as root.
IMAGE_USERS: dict[str, tuple[int, tuple[int, ...]]] = {
    "qdrant": (1000, (1000,)),
    "postgres": (999, (999,)),
    "llm": (0, (0,)),
    "vllm": (0, (0,)),
    "embed": (0, (0,)),  # Text Embeddings Inference runs as root (it mounts no secret)
}
DEPLOYER = 4242  # a host user running make-secrets.sh, neither root nor a container's uid


def _service_user(name: str, svc: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
    if "user" in svc:
        uid, _, gid = str(svc["user"]).partition(":")
        groups = (int(gid or uid), *(int(g) for g in svc.get("group_add", [])))
        return int(uid), groups
    return IMAGE_USERS[name]


def _can_read(st: os.stat_result, uid: int, gids: tuple[int, ...]) -> bool:
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def _secret_sources(svc: dict[str, Any]) -> list[str]:
    return [s if isinstance(s, str) else s["source"] for s in svc.get("secrets", [])]


@pytest.fixture
def made_secrets(tmp_path: Path) -> Path:
    script = tmp_path / "make-secrets.sh"
    shutil.copy(files.COMPOSE_FILE.parent / "make-secrets.sh", script)
    subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=60)
    secrets = tmp_path / "secrets"
    if os.geteuid() == 0:  # as the deployer would own them (CI runs as root)
        for p in [secrets, *secrets.iterdir()]:
            os.chown(p, DEPLOYER, DEPLOYER)
    return secrets


def test_every_service_can_read_each_secret_it_mounts(made_secrets: Path) -> None:
    doc = files.compose()
    checked = []
    for name, svc in doc["services"].items():
        uid, gids = _service_user(name, svc)
        for secret in _secret_sources(svc):
            path = made_secrets / Path(doc["secrets"][secret]["file"]).name
            st = path.stat()
            assert _can_read(st, uid, gids), (
                f"{name} runs as {uid}:{gids} and cannot read {secret} "
                f"(owner {st.st_uid}:{st.st_gid}, mode {stat.filemode(st.st_mode)})"
            )
            checked.append((name, secret))
    # the non-root readers that the old owner-only files locked out are all covered
    assert {("ui", "qdrant_api_key"), ("qdrant", "qdrant_api_key")} <= set(checked)
    assert {("postgres", "postgres_password"), ("migrate", "enclave_database_url")} <= set(checked)


def test_no_other_host_user_can_reach_the_secrets(made_secrets: Path) -> None:
    mode = made_secrets.stat().st_mode
    assert stat.S_IMODE(mode) & 0o077 == 0, f"secrets/ is {stat.filemode(mode)}"
    for path in made_secrets.iterdir():
        assert not path.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH), path.name


def _open_as(uid: int, gid: int, how: str, target: Path) -> bool:
    """Fork, drop to uid/gid (no supplementary groups), try to read; True if it worked.
    how="mounted": reopen an O_PATH descriptor the parent holds (a bind mount of the file);
    how="path": the host path, through its directory."""
    fd = os.open(target, os.O_PATH)
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            name = f"/proc/self/fd/{fd}" if how == "mounted" else str(target)
            with open(name, "rb") as fh:
                fh.read(1)
            os._exit(0)
        except OSError:
            os._exit(1)
        except BaseException:
            os._exit(2)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), f"child failed unexpectedly ({code})"
    return code == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="setresuid needs root (CI runs as root)")
def test_reading_for_real_as_each_container_user(made_secrets: Path) -> None:
    doc = files.compose()
    for name, svc in doc["services"].items():
        uid, gids = _service_user(name, svc)
        if uid == 0:
            continue
        for secret in _secret_sources(svc):
            path = made_secrets / Path(doc["secrets"][secret]["file"]).name
            assert _open_as(uid, gids[0], "mounted", path), f"{name} ({uid}) cannot read {secret}"
    # and a host user other than the deployer cannot get at them through the directory
    any_secret = next(made_secrets.iterdir())
    assert not _open_as(10001, 10001, "path", any_secret)


def test_qdrant_refuses_to_start_without_its_key(tmp_path: Path) -> None:
    """The entrypoint must not start Qdrant with an empty API key (= no authentication)."""
    script = files.compose()["services"]["qdrant"]["entrypoint"][-1]
    script = script.replace("$$", "$").replace("/run/secrets/", f"{tmp_path}/")
    script = script.replace(
        "exec ./entrypoint.sh", """exec sh -c 'echo "started with key $QDRANT__SERVICE__API_KEY"'"""
    )
    secret = tmp_path / "qdrant_api_key"

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)

    secret.write_text("k3y")
    ok = run()
    assert ok.returncode == 0 and "started with key k3y" in ok.stdout, ok.stderr
    secret.write_text("")
    assert run().returncode != 0
    secret.unlink()
    assert run().returncode != 0


# -- Kubernetes ----------------------------------------------------------------------------


def _k8s_secret_file(
    volume: dict[str, Any], key: str, fs_group: int | None
) -> tuple[int, int, int]:
    """(uid, gid, mode) of a Secret volume's file as the kubelet writes it."""
    secret = volume["secret"]
    mode = secret.get("defaultMode", 0o644)
    for item in secret.get("items", []):
        if item["path"] == key:
            mode = item.get("mode", mode)
    if fs_group is not None:  # SetVolumeOwnership: group fsGroup, group read added (read-only)
        return 0, fs_group, mode | 0o440
    return 0, 0, mode


def _pods() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for kind in ("Deployment", "CronJob", "StatefulSet"):
        for doc in files.k8s_kind(kind):
            out.append((doc["metadata"]["name"], files.pod_spec(doc)))
    return out


def test_every_k8s_container_can_read_its_secret_files() -> None:
    checked = []
    for name, spec in _pods():
        psc = spec.get("securityContext") or {}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            sc = {**psc, **(c.get("securityContext") or {})}
            uid = sc.get("runAsUser", 0)
            groups = (sc.get("runAsGroup"), psc.get("fsGroup"), *psc.get("supplementalGroups", []))
            gids = tuple(g for g in groups if g is not None)
            for mount in c.get("volumeMounts", []):
                vol = volumes.get(mount["name"])
                if vol is None:  # a StatefulSet's volumeClaimTemplates: a claim, never a Secret
                    continue
                if "secret" not in vol:
                    continue
                keys = [i["path"] for i in vol["secret"].get("items", [])] or ["<each key>"]
                for key in keys:
                    fuid, fgid, mode = _k8s_secret_file(vol, key, psc.get("fsGroup"))
                    st = os.stat_result((mode | stat.S_IFREG, 0, 0, 1, fuid, fgid, 0, 0, 0, 0))
                    assert _can_read(st, uid, gids), (
                        f"{name}/{c['name']} ({uid}:{gids}) cannot read {mount['mountPath']}/"
                        f"{key}: root:{fgid} {stat.filemode(st.st_mode)}"
                    )
                    checked.append(name)
    assert {"llm", "enclave-ui", "enclave-ingest-corp", "enclave-ingest-worker", "redis"} <= set(
        checked
    )


def test_k8s_model_matches_the_llm_bug() -> None:
    """Without fsGroup a 0440 Secret file is root:root, unreadable for uid 10002."""
    vol = {"secret": {"secretName": "s", "defaultMode": 0o440}}
    fuid, fgid, mode = _k8s_secret_file(vol, "k", None)
    st = os.stat_result((mode | stat.S_IFREG, 0, 0, 1, fuid, fgid, 0, 0, 0, 0))
    assert not _can_read(st, 10002, (10002,))
    fuid, fgid, mode = _k8s_secret_file(vol, "k", 10002)
    st = os.stat_result((mode | stat.S_IFREG, 0, 0, 1, fuid, fgid, 0, 0, 0, 0))
    assert _can_read(st, 10002, (10002,))
