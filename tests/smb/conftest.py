"""A real Samba AD domain controller for the SMB, NT ACL and LDAP tests.

``dc`` provisions once per run (cloning a provisioned template kept in
``$ENCLAVE_DC_TEMPLATE``, default /tmp/enclave-dc-template), starts samba on 127.0.0.2, creates
users and nested groups over LDAPS and lays out a share with NT ACLs set over SMB (``TREE``).
Without root or the samba packages the tests are skipped locally and fail under CI=1 (.ci/run
installs the packages).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from policies import ntacl as N
from tests.smb import dc as dcmod
from tests.smb.smbadmin import Admin

RX = N.READ_AND_EXECUTE
FULL = N.FILE_ALL_ACCESS

# The protected folder of the hidden-leak check: distinctive facts only HR managers may read.
CONFIDENTIAL = {
    "hr/confidential/salaries.txt": "Salary bands for 2027: band A pays 48,000 to 61,000 euros, "
    "band B pays 61,000 to 79,000 euros. Directors earn above 120,000 euros.",
    "hr/confidential/layoffs.txt": "Restructuring plan: the Tilburg warehouse closes in March; "
    "forty-two positions are cut and severance is four months of pay.",
    "hr/confidential/investigation.txt": "Misconduct investigation of the purchasing team lead: "
    "kickbacks from the packaging supplier, interviews scheduled with legal counsel.",
    "hr/confidential/merger.txt": "Project Heron: confidential talks to acquire Globex Logistics "
    "for 310 million euros; the board votes on the offer in June.",
    "hr/confidential/medical.txt": "Medical leave records: three employees on long-term sick "
    "leave, return-to-work plans agreed with the occupational physician.",
}
PUBLIC = {
    "public/handbook.txt": "Welcome to the company handbook. Office hours are nine to five and "
    "lunch is served in the canteen at noon. Salary is paid on the 25th of each month.",
    "public/travel.txt": "Travel policy: book trains for trips under five hours; hotels up to "
    "140 euros per night are reimbursed with receipts.",
    "public/R\u00e9sum\u00e9 \u00fc.txt": "A file with an unusual name about onboarding buddies.",
    "everyone/lunch.txt": "Lunch menu: soup on Monday, pasta on Tuesday, fish on Friday.",
    "authenticated/wifi.txt": "The guest wifi network is called enclave-guest.",
}
OTHER = {
    "hr/policies.txt": "HR policies: annual leave is 26 days; parental leave rules apply.",
    "eng/design.txt": "Design notes: the ingestion service streams files to parser workers.",
    "nobody/orphan.txt": "An orphaned document only administrators may read.",
    "private/secret.txt": "Admins only: the break-glass procedure.",
    "public/locked.txt": "The service account can list but not read this file's permissions.",
}
TREE = {**CONFIDENTIAL, **PUBLIC, **OTHER}


@dataclass
class DomainFixture:
    dc: dcmod.DC
    sids: dict[str, str]

    def settings(self, data_dir: Path, **extra: Any) -> Settings:
        """Settings with the service account for SMB and LDAP (the passwords as secret files)."""
        secrets = data_dir.parent / f"{data_dir.name}-secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        pw = secrets / "svc.password"
        pw.write_text(dcmod.USER_PASSWORD + "\n")
        pw.chmod(0o600)
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "smb": {"username": self.dc.account("svc-enclave"), "password_file": pw},
            "ldap": {
                "url": f"ldaps://{self.dc.ip}",
                "bind_user": f"svc-enclave@{dcmod.REALM.lower()}",
                "bind_password_file": pw,
                "ca_file": self.dc.ca_file,
                "cache_ttl_s": 0,
            },
            "ingest": {"workers": 1},
        }
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return Settings(**values)


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the Samba DC needs root"
    missing = dcmod.missing_tools()
    if missing:
        return f"missing {', '.join(missing)} (apt-get install {dcmod.SAMBA_PACKAGES})"
    return None


@pytest.fixture(scope="session")
def domain() -> Iterator[DomainFixture]:
    problem = _unavailable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}: .ci/run installs and starts what these tests need")
        pytest.skip(problem)
    template = Path(os.environ.get("ENCLAVE_DC_TEMPLATE", "/tmp/enclave-dc-template"))
    dc = dcmod.DC(Path(f"/tmp/enclave-dc-{os.getpid()}"))
    dcmod.provision(dc, template)
    dcmod.start(dc)
    try:
        sids = dcmod.populate_directory(dc)
        admin = Admin(dc)
        try:
            build_tree(admin, sids)
        finally:
            admin.close()
        yield DomainFixture(dc, sids)
    finally:
        dcmod.stop(dc)
        shutil.rmtree(dc.base, ignore_errors=True)


def build_tree(admin: Admin, sids: dict[str, str]) -> None:
    svc = sids["svc-enclave"]
    admins = [
        N.allow(N.LOCAL_SYSTEM, FULL, N.OICI),
        N.allow(N.BUILTIN_ADMINISTRATORS, FULL, N.OICI),
        N.allow(svc, RX, N.OICI),
    ]
    # Share root: admins and the service account, inherited everywhere; Authenticated Users
    # may traverse the root only (Samba checks traverse on every parent folder).
    traverse = N.FILE_EXECUTE | N.FILE_READ_ATTRIBUTES | N.SYNCHRONIZE
    admin.set_acl(
        "", [*admins, N.allow(N.AUTHENTICATED_USERS, traverse)], directory=True, protected=True
    )
    folders = {
        "public": [N.allow(sids["Domain Users"], RX, N.OICI)],
        "everyone": [N.allow(N.EVERYONE, RX, N.OICI)],
        "authenticated": [N.allow(N.AUTHENTICATED_USERS, RX, N.OICI)],
        "hr": [N.allow(sids["hr"], RX, N.OICI)],
        "eng": [N.allow(sids["engineering"], N.GENERIC_READ | N.GENERIC_EXECUTE, N.OICI)],
        "nobody": [],
    }
    for folder, aces in folders.items():
        admin.mkdir(folder)
        admin.set_acl(folder, aces, directory=True)
    admin.mkdir("hr/confidential")  # protected: mallory (an hr-manager) explicitly denied
    admin.set_acl(
        "hr/confidential",
        [N.deny(sids["mallory"], FULL, N.OICI), *admins, N.allow(sids["hr-managers"], RX, N.OICI)],
        directory=True,
        protected=True,
    )
    admin.mkdir("private")  # the service account cannot list it
    admin.set_acl("private", admins[:2], directory=True, protected=True)
    for rel, text in TREE.items():
        admin.write(rel, text.encode())
    admin.set_acl("hr/policies.txt", [N.allow(sids["carol"], N.FILE_GENERIC_READ)], directory=False)
    admin.set_sd(
        "public/locked.txt",
        N.build_sd(
            N.BUILTIN_ADMINISTRATORS,
            None,
            [N.allow(N.BUILTIN_ADMINISTRATORS, FULL)],
            protected=True,
        ),
        owner=True,
    )


@pytest.fixture
def admin(domain: DomainFixture) -> Iterator[Admin]:
    a = Admin(domain.dc)
    yield a
    a.close()


@pytest.fixture
def scratch(admin: Admin) -> Iterator[Callable[[], str]]:
    """Fresh top-level folders (``t-<id>``) on the share, removed afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        admin.mkdir(name)
        made.append(name)
        return name

    yield make
    for name in made:
        admin.remove(name, directory=True)


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real embedding model, loaded once for every sync in these tests."""
    from core.settings import EmbeddingSettings
    from ingest.encoding.embed import load_embedder

    return load_embedder(EmbeddingSettings())
