"""A second machine on this one: a network namespace joined to this host by a veth pair, in
which a worker runs with its own host name, its own process ids and its own view of the file
system (the share and the coordinator's data directory are covered by empty tmpfs mounts).

What the worker there has in common with the coordinator is what a real second machine has:
the installed software, its own copy of the config file, and a TCP route to the broker. It is
built with Debian's iproute2 (``ip netns``, ``ip link``) and util-linux's ``unshare``, as root.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ingest.conftest import REPO

# Run inside the new namespaces: take the host name, hide each directory of $ENCLAVE_T_HIDE
# (":"-separated) under an empty tmpfs, report what the worker can see there, start it.
_LAUNCH = r"""
set -eu
hostname "$ENCLAVE_T_HOSTNAME"
old_ifs=$IFS; IFS=:
for d in $ENCLAVE_T_HIDE; do
  mount -t tmpfs -o size=1m,mode=0700 enclave-hidden "$d"
  echo "hidden $d: $(ls -A "$d" | wc -l) entries"
done
IFS=$old_ifs
echo "host $(hostname), pid $$, routes: $(ip -4 route | tr '\n' ';')"
exec "$@"
"""


def require_namespaces() -> None:
    """Skip (fail under CI, where .ci/run runs as root with iproute2) without what it needs."""
    missing = [tool for tool in ("ip", "unshare") if shutil.which(tool) is None]
    reason = None
    if missing:
        reason = f"{', '.join(missing)} not installed (Debian iproute2, util-linux)"
    elif os.geteuid() != 0:
        reason = "network namespaces need root"
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"a second test host cannot be built in CI: {reason}")
    pytest.skip(reason)


@dataclass
class SecondHost:
    """``hostname`` at ``peer_ip``; this machine is ``host_ip`` on the link between them."""

    hostname: str
    netns: str
    link: str
    host_ip: str
    peer_ip: str

    @classmethod
    def create(cls) -> SecondHost:
        tag = secrets.token_hex(3)
        net = 16 + secrets.randbelow(200)  # 10.<net>.<sub>.0/30: unlikely to meet a real route
        sub = secrets.randbelow(64) * 4
        host = cls(
            hostname=f"enclave-b-{tag}",
            netns=f"encb{tag}",
            link=f"vencb{tag}",
            host_ip=f"10.{net}.{sub}.1",
            peer_ip=f"10.{net}.{sub}.2",
        )
        peer_link = f"vencp{tag}"
        try:
            _ip("netns", "add", host.netns)
            _ip("link", "add", host.link, "type", "veth", "peer", "name", peer_link)
            _ip("link", "set", peer_link, "netns", host.netns)
            _ip("addr", "add", f"{host.host_ip}/30", "dev", host.link)
            _ip("link", "set", host.link, "up")
            for args in (
                ("addr", "add", f"{host.peer_ip}/30", "dev", peer_link),
                ("link", "set", peer_link, "up"),
                ("link", "set", "lo", "up"),
            ):
                _ip("netns", "exec", host.netns, "ip", *args)
        except BaseException:
            host.destroy()
            raise
        return host

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run on this host (new UTS, mount and pid namespaces inside its netns)."""
        return [
            "ip", "netns", "exec", self.netns,
            "unshare", "--uts", "--mount", "--propagation", "private",
            "--pid", "--fork", "--mount-proc",
            "sh", "-c", _LAUNCH, "enclave-host-b", *argv,
        ]  # fmt: skip

    def worker(
        self, config: Path, log: Path, hide: list[Path], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """``ingest worker`` on this host, with ``hide`` invisible to it."""
        argv = [sys.executable, "-m", "ingest.cli", "worker", "--config", str(config)]
        argv += ["--name", "b@%h", "--loglevel", "info"]
        env = {
            **env,
            "ENCLAVE_T_HOSTNAME": self.hostname,
            "ENCLAVE_T_HIDE": ":".join(str(p) for p in hide),
        }
        with log.open("wb") as out:
            return subprocess.Popen(
                self.command(argv),
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def partition(self) -> None:
        """Cut the link: the broker and this host can no longer reach each other."""
        _ip("link", "set", self.link, "down")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.link)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.netns)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)
