"""Syncing a real share: NT ACLs -> readers in the index, and what users then retrieve.

Against the Samba AD DC of ``conftest.py``: the service account walks the share over SMB, the
LDAP directory gives every user's SIDs (nested groups included), and the assistant's real
retrieval path (real embedding model, Qdrant Edge) answers for each user.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from ingest.index import open_index
from ingest.sources.base import SourceEntry
from ingest.sync.run import run_sync
from ingest.sync.summary import SyncSummary
from policies import ntacl as N
from policies.identity import Principal
from tests.smb.conftest import CONFIDENTIAL, FULL, RX, TREE, DomainFixture
from tests.smb.dc import add_group, admin_ldap, rename_group, sid_of
from tests.smb.smbadmin import Admin

SOURCE = "share"


@dataclass
class Synced:
    settings: Settings
    summary: SyncSummary
    domain: DomainFixture

    def payloads(self, source: str = SOURCE) -> dict[str, dict[str, Any]]:
        """path -> payload of its first chunk (every chunk of a file carries the same ACL)."""
        out: dict[str, dict[str, Any]] = {}
        index = open_index(self.settings)
        try:
            for batch in index.scroll_points():
                for p in batch:
                    if p.payload["source"] == source and p.payload["chunk_index"] == 0:
                        out[p.payload["path"]] = p.payload
        finally:
            index.close()
        return out


def sync(settings: Settings, root: str, source: str, embedder: Any) -> SyncSummary:
    return run_sync(settings, root, source, workers=1)


@pytest.fixture(scope="module")
def synced(
    domain: DomainFixture, embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Synced:
    settings = domain.settings(tmp_path_factory.mktemp("smbsync") / "data")
    summary = sync(settings, domain.dc.url, SOURCE, embedder)
    return Synced(settings, summary, domain)


@pytest.fixture(scope="module")
def assistant(synced: Synced) -> Iterator[Any]:
    from assistant.service import Assistant

    a = Assistant.from_settings(synced.settings)
    yield a
    a.close()


def who(assistant: Any, name: str) -> Principal:
    p = assistant.policies.resolve_user(name)
    assert p is not None, name
    return p


def readable(assistant: Any, name: str, question: str, k: int = 20) -> set[str]:
    return {c.path for c in assistant.search(question, who(assistant, name), k=k).chunks}


# -- the mapping ---------------------------------------------------------------------------------


def test_first_sync_indexes_what_the_service_account_may_read(synced: Synced) -> None:
    s = synced.summary
    issues = {i.path: i.code for i in s.failed}
    assert issues == {"public/locked.txt": "ingest.acl_unreadable"}
    assert [(u.path, u.code) for u in s.unlistable] == [("private", "ingest.unlistable")]
    indexed = set(synced.payloads())
    assert indexed == {p for p in TREE if not p.startswith("private/") and p != "public/locked.txt"}
    # every downloaded copy was released after its parse
    staging = synced.settings.staging_dir
    assert staging.exists() and list(staging.rglob("*")) == []


# (before the tests that open the assistant: it holds the embedded index until the module ends)
def test_unchanged_resync_reads_permissions_but_writes_nothing(
    synced: Synced, embedder: Any
) -> None:
    again = sync(synced.settings, synced.domain.dc.url, SOURCE, embedder)
    assert again.embedded == 0 and again.added == 0 and again.permissions_updated == 0
    # every indexed file, plus public/locked.txt: still failing, recorded, not parsed again
    assert again.unchanged == len(synced.payloads()) + 1
    assert [(u.path, u.code) for u in again.unlistable] == [("private", "ingest.unlistable")]


def test_inherited_and_explicit_aces_become_readers(synced: Synced) -> None:
    sids = synced.domain.sids
    p = synced.payloads()

    def allowed(path: str) -> set[str]:
        return set(p[path]["allowed_groups"])

    # inherited from the folder; SYSTEM, Administrators and the service account are dropped
    assert allowed("public/handbook.txt") == {sids["Domain Users"]}
    assert allowed("everyone/lunch.txt") == {N.EVERYONE}
    assert allowed("authenticated/wifi.txt") == {N.AUTHENTICATED_USERS}
    assert allowed("eng/design.txt") == {sids["engineering"]}  # GENERIC_READ mapped
    # an explicit entry on the file on top of the inherited one
    assert allowed("hr/policies.txt") == {sids["hr"], sids["carol"]}
    # protected folder: its own entries only, the deny stored as a denied principal
    for path in CONFIDENTIAL:
        assert allowed(path) == {sids["hr-managers"]}
        assert p[path]["denied_groups"] == [sids["mallory"]]
    # only administrators: readable by nobody
    assert p["nobody/orphan.txt"]["allowed_groups"] == []


def test_stored_facts_keep_the_inheritance_flags(synced: Synced) -> None:
    from core.db import make_engine, session_scope
    from policies import aclstore
    from policies.readers import NtFacts

    sids = synced.domain.sids
    with session_scope(make_engine(synced.settings.db_url)) as s:
        stored = aclstore.get(s, SOURCE, "hr/policies.txt")
    assert stored is not None and isinstance(stored[0], NtFacts)
    sd = N.parse_sd(stored[0].raw)
    flags = {(a.sid, a.inherited) for a in sd.dacl or ()}
    assert (sids["carol"], False) in flags and (sids["hr"], True) in flags


def test_each_user_retrieves_what_the_acls_allow(synced: Synced, assistant: Any) -> None:
    common = {p for p in TREE if p.startswith(("public/", "everyone/", "authenticated/"))}
    common.discard("public/locked.txt")
    expected = {
        "alice": common | {"hr/policies.txt"},
        "bob": common | {"hr/policies.txt"} | set(CONFIDENTIAL),  # hr-managers, nested in hr
        "carol": common | {"hr/policies.txt", "eng/design.txt"},  # explicit entry on the file
        "mallory": common | {"hr/policies.txt", "eng/design.txt"},  # hr-manager, but denied
        "outsider": common,
    }
    for name, want in expected.items():
        got: set[str] = set()
        for text in TREE.values():
            got |= readable(assistant, name, text, k=20)
        assert got == want, name


def test_hidden_leak_outsider_gets_nothing_of_the_protected_folder(
    synced: Synced, assistant: Any
) -> None:
    """k = 20, every protected document's own words as the question, the real retrieval path:
    users outside hr-managers (and mallory, denied by name) never see a protected chunk, while
    bob does and the outsider still gets answers from what they may read."""
    questions = [
        *list(CONFIDENTIAL.values()),
        "What are the salary bands?",
        "Which warehouse closes and how many positions are cut?",
        "Who is being investigated for kickbacks?",
        "Which company are we acquiring and for how much?",
        "Who is on long-term sick leave?",
    ]
    for q in questions:
        for name in ("outsider", "alice", "carol", "mallory"):
            leaked = {p for p in readable(assistant, name, q) if p.startswith("hr/confidential/")}
            assert not leaked, (name, q, leaked)
        assert readable(assistant, "bob", q) & set(CONFIDENTIAL), q
    assert readable(assistant, "outsider", "What are the salary bands?") & {"public/handbook.txt"}


# -- changes on the share ------------------------------------------------------------------------


def _tree(admin: Admin, top: str, files: int, grant: list[N.Ace]) -> list[str]:
    admin.set_acl(top, grant, directory=True)
    admin.mkdir(f"{top}/sub")
    paths = [f"{top}/sub/doc{i}.txt" for i in range(files)]
    for i, p in enumerate(paths):
        admin.write(p, f"Quarterly planning memo number {i} about the Orion rollout.".encode())
    return paths


def _entries(domain: DomainFixture, top: str, tmp_path: Path) -> list[SourceEntry]:
    from tests.smb.test_source import open_share

    source = open_share(domain, top, tmp_path)
    try:
        return [e for e in source.walk() if isinstance(e, SourceEntry)]
    finally:
        source.close()


def _fresh(domain: DomainFixture, tmp_path: Path) -> Settings:
    return domain.settings(tmp_path / "data")


def test_revoke_then_resync_is_permission_only(
    domain: DomainFixture,
    admin: Admin,
    scratch: Callable[[], str],
    embedder: Any,
    tmp_path: Path,
) -> None:
    sids = domain.sids
    top = scratch()
    _tree(admin, top, 5, [N.allow(sids["alice"], RX, N.OICI), N.allow(sids["carol"], RX, N.OICI)])
    settings = _fresh(domain, tmp_path)
    url = f"{domain.dc.url}/{top}"
    first = sync(settings, url, "rev", embedder)
    assert first.added == 5 and first.embedded >= 5
    state = Synced(settings, first, domain)
    assert all(sids["alice"] in p["allowed_groups"] for p in state.payloads("rev").values())

    times = {e.rel_path: e.mtime_ns for e in _entries(domain, top, tmp_path)}
    # revoke alice on the top folder and let the change flow down, as Explorer does
    sd = admin.sd(top, directory=True)
    admin.set_sd(top, N.build_sd(None, None, [a for a in sd.dacl or () if a.sid != sids["alice"]]))
    assert admin.propagate(top) == 6  # the sub folder and its five files
    # the server's times do not show an ACL edit: only the descriptors do
    assert {e.rel_path: e.mtime_ns for e in _entries(domain, top, tmp_path)} == times
    second = sync(settings, url, "rev", embedder)
    assert second.permissions_updated == 5
    assert second.embedded == 0 and second.added == second.updated == 0
    payloads = state.payloads("rev")
    assert all(sids["alice"] not in p["allowed_groups"] for p in payloads.values())
    assert all(sids["carol"] in p["allowed_groups"] for p in payloads.values())

    from assistant.service import Assistant

    a = Assistant.from_settings(settings)
    try:
        q = "Orion rollout planning memo"
        assert not readable(a, "alice", q) and len(readable(a, "carol", q)) == 5
    finally:
        a.close()


def test_group_rename_changes_nothing_in_the_index(
    domain: DomainFixture,
    admin: Admin,
    scratch: Callable[[], str],
    embedder: Any,
    tmp_path: Path,
) -> None:
    top = scratch()
    old, new = f"grp-{top}", f"renamed-{top}"
    conn = admin_ldap(domain.dc)
    try:
        add_group(conn, domain.dc, old, ["carol"])
        sid = sid_of(conn, domain.dc, old)
        _tree(admin, top, 2, [N.allow(sid, RX, N.OICI)])
        settings = _fresh(domain, tmp_path)
        url = f"{domain.dc.url}/{top}"
        first = sync(settings, url, "ren", embedder)
        assert first.added == 2
        rename_group(conn, domain.dc, old, new)
    finally:
        conn.unbind()
    second = sync(settings, url, "ren", embedder)
    assert second.permissions_updated == 0 and second.unchanged == 2
    from policies.service import PolicyService

    svc = PolicyService.from_settings(settings)
    carol = svc.resolve_user("carol")
    assert carol is not None and sid in carol.groups  # membership kept, same SID
    assert svc.directory.display_names([sid]) == {sid: new}
    found, unknown = svc.directory.principal_ids([new, old])
    assert found == {new: sid} and unknown == [old]


def test_folder_the_service_account_loses_is_reported_and_removed(
    domain: DomainFixture,
    admin: Admin,
    scratch: Callable[[], str],
    embedder: Any,
    tmp_path: Path,
) -> None:
    sids = domain.sids
    top = scratch()
    _tree(admin, top, 3, [N.allow(sids["alice"], RX, N.OICI)])
    admin.mkdir(f"{top}/open")
    admin.write(f"{top}/open/readme.txt", b"This folder stays readable for the crawler.")
    settings = _fresh(domain, tmp_path)
    url = f"{domain.dc.url}/{top}"
    assert sync(settings, url, "lost", embedder).added == 4
    # the owner locks sub/ down to administrators: the service account can no longer list it
    admins = [
        N.allow(N.LOCAL_SYSTEM, FULL, N.OICI),
        N.allow(N.BUILTIN_ADMINISTRATORS, FULL, N.OICI),
    ]
    admin.set_acl(f"{top}/sub", admins, directory=True, protected=True)
    second = sync(settings, url, "lost", embedder)
    assert [(u.path, u.code) for u in second.unlistable] == [("sub", "ingest.unlistable")]
    assert "no access" in second.unlistable[0].reason
    assert second.deleted == 3
    remaining = Synced(settings, second, domain).payloads("lost")
    assert set(remaining) == {"open/readme.txt"}  # nothing of sub/ silently kept


def test_ingest_cli_syncs_a_share_with_the_password_in_a_secret_file(
    domain: DomainFixture, admin: Admin, scratch: Callable[[], str], tmp_path: Path
) -> None:
    from tests.ingest.conftest import run_cli

    sids = domain.sids
    top = scratch()
    _tree(admin, top, 2, [N.allow(sids["bob"], RX, N.OICI)])
    pw = tmp_path / "svc.pw"
    pw.write_text("Passw0rd!x\n")
    cfg = tmp_path / "enclave.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[ingest]\nworkers = 1\n"
        f'[smb]\nusername = "ENCLAVE\\\\svc-enclave"\npassword_file = "{pw}"\n'
        f'[ldap]\nurl = "ldaps://{domain.dc.ip}"\nbind_user = "svc-enclave@enclave.test"\n'
        f'bind_password_file = "{pw}"\nca_file = "{domain.dc.ca_file}"\n'
    )
    url = f"{domain.dc.url}/{top}"
    res = run_cli("sync", url, "--source", "cli", "--config", str(cfg), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["added"] == 2 and summary["failed_count"] == 0
    # credentials on the command line are refused before anything connects
    bad = url.replace("smb://", "smb://svc-enclave:Passw0rd!x@")
    res = run_cli("sync", bad, "--source", "cli", "--config", str(cfg))
    assert res.returncode == 2 and "ingest.bad_argument" in res.stderr
    assert "Passw0rd" not in res.stderr
    # the password from the environment instead of a file
    cfg.write_text(cfg.read_text().replace(f'password_file = "{pw}"\n', "", 1))
    res = run_cli(
        "sync",
        url,
        "--source",
        "cli",
        "--config",
        str(cfg),
        env={"ENCLAVE_SMB__PASSWORD": "Passw0rd!x"},
    )
    assert res.returncode == 0, res.stderr


def test_check_access_names_the_deciding_ace_and_group(synced: Synced) -> None:
    from typer.testing import CliRunner

    from policies.cli import app

    cfg = synced.settings
    path = synced.settings.data_dir.parent / "check.toml"
    path.write_text(
        f'data_dir = "{cfg.data_dir}"\n'
        f'[smb]\nusername = "ENCLAVE\\\\svc-enclave"\n'
        f'[ldap]\nurl = "{cfg.ldap.url}"\nbind_user = "{cfg.ldap.bind_user}"\n'
        f'bind_password_file = "{cfg.ldap.bind_password_file}"\nca_file = "{cfg.ldap.ca_file}"\n'
    )
    runner = CliRunner()

    def check(user: str, target: str) -> tuple[int, str]:
        res = runner.invoke(
            app,
            ["check-access", "--user", user, "--source", SOURCE, target, "--config", str(path)],
        )
        return res.exit_code, res.output

    code, out = check("mallory", "hr/confidential/salaries.txt")
    assert code == 4 and "CANNOT" in out
    assert "#1 deny  mallory" in out and "denied through mallory" in out
    assert "Windows' ordered evaluation" not in out  # the deny comes first there too
    code, out = check("bob", "hr/confidential/salaries.txt")
    assert code == 0 and "CAN read it via hr-managers" in out
    assert "the user holds this SID" in out and "administrative SID" in out
    code, out = check("carol", "hr/policies.txt")
    assert code == 0 and "via carol" in out
    code, out = check("outsider", "nobody/orphan.txt")
    assert code == 4 and "CANNOT" in out
