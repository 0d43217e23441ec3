"""A throw-away Samba Active Directory domain controller on loopback, for tests and benchmarks.

Everything lives in one directory (database, smb.conf, sockets, logs, the share); nothing is
written to /etc/samba or /var/lib/samba. The recipe and its pitfalls (measured on this machine):

- ``samba-tool domain provision -s /dev/null`` (without ``-s /dev/null`` it copies the host's
  smb.conf globals and printer shares into the new config); a provisioned directory is kept as
  a template and cloned with ``tar --xattrs`` (0.2 s instead of ~8 s);
- ``interfaces = 127.0.0.2/8`` + ``bind interfaces only``: LDAP (389/636, not configurable) and
  SMB listen on 127.0.0.2 and leave 127.0.0.1 to the host (without ``/8`` smbd finds no
  interface);
- our own CA and an EC server certificate with IP SANs (Samba's generated one has a CN only,
  which Python's TLS check ignores);
- ``samba -i -M single`` with stdin from /dev/null (``-i`` exits when a pipe on stdin closes),
  in its own session, stopped with ``killpg``;
- ready = an LDAP rootDSE read *and* an SMB session + tree connect (port 445 answers before
  winbindd can map users; session setup fails until then);
- one DC per host: smbd only knows the compiled-in winbindd socket /run/samba/winbindd.

Needs root (privileged ports, setuid to users, ``security.NTACL`` xattrs) and the Debian
packages samba samba-ad-dc samba-ad-provision winbind smbclient ldb-tools acl attr.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REALM = "ENCLAVE.TEST"
DOMAIN = "ENCLAVE"
ADMIN_PASSWORD = "Adm1n-Pass!x"
USER_PASSWORD = "Passw0rd!x"
SAMBA_PACKAGES = "samba samba-ad-dc samba-ad-provision winbind smbclient ldb-tools acl attr"


def missing_tools() -> list[str]:
    return [t for t in ("samba", "samba-tool", "setfacl") if shutil.which(t) is None]


@dataclass
class DC:
    base: Path
    ip: str = "127.0.0.2"
    smb_port: int = 445
    share: str = "docs"
    hostname: str = "enclavedc"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def conf(self) -> Path:
        return self.base / "etc" / "smb.conf"

    @property
    def share_path(self) -> Path:
        return self.base / "shares" / self.share

    @property
    def tls_dir(self) -> Path:
        return self.base / "private" / "enclave-tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={p}" for p in REALM.lower().split("."))

    @property
    def url(self) -> str:
        return f"smb://{self.ip}/{self.share}"

    def account(self, name: str) -> str:
        return f"{DOMAIN}\\{name}"


# -- provision ---------------------------------------------------------------------------------


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def _marker(dc: DC) -> str:
    """What a template was provisioned with (another realm or password: provision again)."""
    import hashlib

    return json.dumps(
        {
            "realm": REALM,
            "domain": DOMAIN,
            "host": dc.hostname,
            "admin": hashlib.sha256(ADMIN_PASSWORD.encode()).hexdigest(),
        },
        sort_keys=True,
    )


def _provisioned(base: Path, dc: DC) -> bool:
    marker = base / "enclave-template.json"
    return (
        (base / "private" / "sam.ldb").exists()
        and (base / "etc" / "smb.conf").exists()
        and marker.exists()
        and marker.read_text() == _marker(dc)
    )


def provision(dc: DC, template: Path) -> None:
    """Clone the template (provisioning it first when it does not exist yet)."""
    if not _provisioned(template, dc):
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir(parents=True)
        _run(
            [
                "samba-tool",
                "domain",
                "provision",
                "-s",
                "/dev/null",
                "--server-role=dc",
                "--dns-backend=NONE",
                "--use-rfc2307",
                f"--realm={REALM}",
                f"--domain={DOMAIN}",
                f"--host-name={dc.hostname}",
                f"--adminpass={ADMIN_PASSWORD}",
                f"--targetdir={template}",
                "--option=interfaces=lo",
                "--option=bind interfaces only=yes",
            ]
        )
        (template / "enclave-template.json").write_text(_marker(dc))
    shutil.rmtree(dc.base, ignore_errors=True)
    dc.base.mkdir(parents=True)
    tar = subprocess.Popen(
        ["tar", "-C", str(template), "--xattrs", "--xattrs-include=*", "-cf", "-", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    _run(
        ["tar", "-C", str(dc.base), "--xattrs", "--xattrs-include=*", "-xf", "-"], stdin=tar.stdout
    )
    tar.wait()
    dc.conf.write_text(dc.conf.read_text().replace(str(template), str(dc.base)))
    _write_conf(dc)


def _write_conf(dc: DC) -> None:
    text = dc.conf.read_text()
    head, _, rest = text.partition("[global]\n")
    body, sep, tail = rest.partition("\n[")
    ours = {
        "interfaces": f"{dc.ip}/8",
        "bind interfaces only": "yes",
        "pid directory": f"{dc.base}/run",
        "ncalrpc dir": f"{dc.base}/run/ncalrpc",
        "log file": f"{dc.base}/log/log.%m",
        "log level": "1",
        "server services": "s3fs, rpc, ldap, winbindd",
        "smb ports": str(dc.smb_port),
        "server min protocol": "SMB2_10",
        "disable netbios": "yes",
        "dns proxy": "no",
        "tls enabled": "yes",
        "tls keyfile": f"{dc.tls_dir}/key.pem",
        "tls certfile": f"{dc.tls_dir}/cert.pem",
        "tls cafile": f"{dc.tls_dir}/ca.pem",
    }
    kept = [
        line
        for line in body.split("\n")
        if "=" not in line or line.split("=", 1)[0].strip().lower() not in ours
    ]
    body = "\n".join(kept).rstrip("\n") + "\n" + "".join(f"\t{k} = {v}\n" for k, v in ours.items())
    text = head + "[global]\n" + body + (sep + tail if sep else "")
    text = text.split(f"\n[{dc.share}]", 1)[0].rstrip("\n") + "\n"
    text += f"\n[{dc.share}]\n\tpath = {dc.share_path}\n\tread only = no\n"
    dc.conf.write_text(text)
    for sub in ("run", "log", "cache"):
        (dc.base / sub).mkdir(exist_ok=True)
    dc.share_path.mkdir(parents=True, exist_ok=True)
    _make_tls(dc)


def _make_tls(dc: DC) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = dc.tls_dir
    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{REALM} test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    fqdn = f"{dc.hostname}.{REALM.lower()}"
    sans: list[x509.GeneralName] = [x509.DNSName(fqdn), x509.DNSName("localhost")]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted({dc.ip, "127.0.0.1"})]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile = d / "key.pem"
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(keyfile, 0o600)  # samba refuses a key others may read


# -- run ---------------------------------------------------------------------------------------


def _port_open(ip: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((ip, port), timeout=0.3):
        return True
    return False


def _other_winbindd() -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("/run/samba/winbindd/pipe")
        return True
    except OSError:
        return False
    finally:
        s.close()


def reap_orphans() -> list[int]:
    """Stop test DCs left by a test session that was killed before its teardown (their working
    directory is ``/tmp/enclave-dc-<pid>`` of a pytest process that no longer runs); returns
    the pids stopped. A DC of a live session is left alone."""
    stopped: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        name = Path(cwd).name
        if not name.startswith("enclave-dc-") or not name[len("enclave-dc-") :].isdigit():
            continue
        owner = int(name[len("enclave-dc-") :])
        if Path(f"/proc/{owner}").exists():
            continue
        with contextlib.suppress(OSError):
            os.kill(int(proc.name), signal.SIGKILL)
            stopped.append(int(proc.name))
    return stopped


def start(dc: DC, timeout_s: float = 90.0) -> float:
    """Start samba; seconds until LDAP and SMB answered."""
    if reap_orphans():
        time.sleep(1)  # let the killed samba release its ports
    for port in (389, 636, dc.smb_port):
        if _port_open(dc.ip, port):
            raise RuntimeError(f"{dc.ip}:{port} is taken by another process")
    if _other_winbindd():
        raise RuntimeError("another Samba DC runs on this host (/run/samba/winbindd/pipe)")
    log = (dc.base / "log" / "samba.stdout").open("ab")
    started = time.monotonic()
    dc.proc = subprocess.Popen(
        ["samba", "-s", str(dc.conf), "-i", "-M", "single"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=dc.base,
    )
    log.close()
    try:
        wait_ready(dc, timeout_s)
    except BaseException:
        stop(dc)
        raise
    return time.monotonic() - started


def wait_ready(dc: DC, timeout_s: float) -> None:
    from ldap3 import BASE, Connection, Server

    from ingest.sources.smbclient import SmbShare

    deadline = time.monotonic() + timeout_s
    ldap_ok = smb_ok = False
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if dc.proc is not None and dc.proc.poll() is not None:
            raise RuntimeError(f"samba exited with {dc.proc.returncode}; see {dc.base}/log")
        try:
            if not ldap_ok:
                conn = Connection(Server(dc.ip, port=389, connect_timeout=2), receive_timeout=5)
                conn.bind()
                conn.search("", "(objectClass=*)", BASE, attributes=["defaultNamingContext"])
                ldap_ok = bool(conn.entries)
                conn.unbind()
            if ldap_ok and not smb_ok:
                SmbShare(
                    dc.ip,
                    dc.share,
                    dc.account("Administrator"),
                    ADMIN_PASSWORD,
                    port=dc.smb_port,
                    timeout_s=5,
                ).connect().close()
                smb_ok = True
            if ldap_ok and smb_ok:
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"DC not ready in {timeout_s} s (ldap={ldap_ok}, smb={smb_ok}): {last!r}")


def stop(dc: DC) -> None:
    proc, dc.proc = dc.proc, None
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    deadline = time.monotonic() + 15  # smbd/winbindd children share the process group
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# -- directory objects -------------------------------------------------------------------------


def admin_ldap(dc: DC) -> Any:
    from ldap3 import Connection, Server, Tls

    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(dc.ca_file))
    conn = Connection(
        Server(dc.ip, port=636, use_ssl=True, tls=tls),
        user=f"Administrator@{REALM.lower()}",
        password=ADMIN_PASSWORD,
        raise_exceptions=False,
    )
    if not conn.bind():
        raise RuntimeError(f"admin bind failed: {conn.result}")
    return conn


def add_user(conn: Any, dc: DC, name: str) -> None:
    dn = f"CN={name},CN=Users,{dc.base_dn}"
    ok = conn.add(
        dn,
        ["top", "person", "organizationalPerson", "user"],
        {
            "sAMAccountName": name,
            "userPrincipalName": f"{name}@{REALM.lower()}",
            "unicodePwd": f'"{USER_PASSWORD}"'.encode("utf-16-le"),
            "userAccountControl": "512",
        },
    )
    if not ok and conn.result["result"] != 68:  # 68: already exists
        raise RuntimeError(f"add user {name}: {conn.result}")


def add_group(conn: Any, dc: DC, name: str, members: list[str]) -> None:
    from ldap3 import MODIFY_ADD

    dn = f"CN={name},CN=Users,{dc.base_dn}"
    ok = conn.add(dn, ["top", "group"], {"sAMAccountName": name, "groupType": str(-2147483646)})
    if not ok and conn.result["result"] != 68:
        raise RuntimeError(f"add group {name}: {conn.result}")
    for m in members:
        member_dn = f"CN={m},CN=Users,{dc.base_dn}"
        ok = conn.modify(dn, {"member": [(MODIFY_ADD, [member_dn])]})
        if not ok and conn.result["result"] != 68:
            raise RuntimeError(f"add {m} to {name}: {conn.result}")


def rename_group(conn: Any, dc: DC, old: str, new: str) -> None:
    """Rename like ``samba-tool group rename``: sAMAccountName and CN; the SID stays."""
    from ldap3 import MODIFY_REPLACE

    dn = f"CN={old},CN=Users,{dc.base_dn}"
    if not conn.modify(dn, {"sAMAccountName": [(MODIFY_REPLACE, [new])]}):
        raise RuntimeError(f"rename {old}: {conn.result}")
    if not conn.modify_dn(dn, f"CN={new}"):
        raise RuntimeError(f"rename {old}: {conn.result}")


def sid_of(conn: Any, dc: DC, name: str) -> str:
    from policies.ntacl import sid_from_bytes

    conn.search(dc.base_dn, f"(sAMAccountName={name})", attributes=["objectSid"])
    entries = [e for e in conn.response if e.get("type") == "searchResEntry"]
    if not entries:
        raise KeyError(name)
    return sid_from_bytes(bytes(entries[0]["raw_attributes"]["objectSid"][0]))[0]


USERS = ["svc-enclave", "alice", "bob", "carol", "mallory", "outsider"]
GROUPS = {  # created in this order; hr-managers is nested in hr
    "hr-managers": ["bob", "mallory"],
    "hr": ["alice", "hr-managers"],
    "engineering": ["carol", "mallory"],
}


def populate_directory(dc: DC) -> dict[str, str]:
    conn = admin_ldap(dc)
    try:
        for u in USERS:
            add_user(conn, dc, u)
        for g, members in GROUPS.items():
            add_group(conn, dc, g, members)
        names = [*USERS, *GROUPS, "Domain Users", "Domain Admins"]
        return {n: sid_of(conn, dc, n) for n in names}
    finally:
        conn.unbind()


def save_state(dc: DC, data: dict[str, Any]) -> None:
    (dc.base / "populated.json").write_text(json.dumps(data, indent=1))
