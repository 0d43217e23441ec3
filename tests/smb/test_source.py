"""The SMB share passes the Source contract, against the real Samba DC; plus what only a share
has: permissions read with the walk, folders the service account may not list, unreadable
descriptors, reparse points."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from core.errors import SourceArgumentError, SourceUnavailableError
from core.settings import SmbSettings
from ingest.sources.base import ACL_UNREADABLE, Rejected, Source, SourceEntry, Unreadable
from ingest.sources.smb import SmbSource, parse_smb_url
from policies import ntacl as N
from policies.readers import NtFacts
from tests.smb.conftest import TREE, DomainFixture
from tests.smb.dc import USER_PASSWORD
from tests.smb.smbadmin import Admin
from tests.sources.contract import SourceContract


def svc_settings(domain: DomainFixture, **kw: object) -> SmbSettings:
    return SmbSettings(
        username=domain.dc.account("svc-enclave"),
        password=USER_PASSWORD,
        **kw,  # type: ignore[arg-type]
    )


def open_share(domain: DomainFixture, path: str, tmp: object) -> SmbSource:
    from pathlib import Path

    return SmbSource.open(
        f"{domain.dc.url}/{path}".rstrip("/"), svc_settings(domain), Path(str(tmp))
    )


class ShareTree:
    def __init__(self, admin: Admin, folder: str, domain: DomainFixture, staging: object) -> None:
        self.admin, self.folder, self.domain, self.staging = admin, folder, domain, staging

    def _p(self, rel: str) -> str:
        return f"{self.folder}/{rel}"

    def write(self, rel_path: str, data: bytes) -> None:
        parts = rel_path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.admin.mkdir(self._p("/".join(parts[:i])))
        self.admin.write(self._p(rel_path), data)

    def rename(self, src: str, dst: str) -> None:
        self.admin.rename(self._p(src), self._p(dst))

    def remove(self, rel_path: str) -> None:
        self.admin.remove(self._p(rel_path))

    def open(self) -> Source:
        return open_share(self.domain, self.folder, self.staging)


class TestSmbSource(SourceContract):
    @pytest.fixture
    def tree(
        self, domain: DomainFixture, admin: Admin, scratch: Callable[[], str], tmp_path: object
    ) -> ShareTree:
        return ShareTree(admin, scratch(), domain, tmp_path)

    def test_staged_copies_are_deleted_on_release_and_close(self, filled: ShareTree) -> None:
        source = filled.open()
        try:
            entry = next(e for e in source.walk() if isinstance(e, SourceEntry))
            first = source.fetch(entry)
            second = source.fetch(entry)
            assert first.path != second.path and first.path.exists()
            first.release()
            assert not first.path.exists() and second.path.exists()
        finally:
            source.close()
        assert not second.path.exists()


@pytest.fixture
def walked(domain: DomainFixture, tmp_path: object) -> Iterator[list[object]]:
    source = open_share(domain, "", tmp_path)
    try:
        yield [
            i
            for i in source.walk()
            if not str(getattr(i, "rel_path", getattr(i, "rel_dir", ""))).startswith("t-")
        ]
    finally:
        source.close()


def test_every_file_comes_with_its_security_descriptor(walked: list[object]) -> None:
    files = {e.rel_path: e for e in walked if isinstance(e, SourceEntry)}
    expected = {p for p in TREE if not p.startswith("private/")}
    assert set(files) == expected
    for path, e in files.items():
        if path == "public/locked.txt":
            assert e.facts is None and e.facts_error is not None
            assert e.facts_error[0] == ACL_UNREADABLE and "ACCESS_DENIED" in e.facts_error[1]
        else:
            assert isinstance(e.facts, NtFacts) and e.facts_error is None
            assert N.parse_sd(e.facts.raw).dacl


def test_a_folder_the_service_account_cannot_list_is_reported_not_kept(
    walked: list[object],
) -> None:
    unlistable = [i for i in walked if isinstance(i, Unreadable)]
    assert [(u.rel_dir, u.keep) for u in unlistable] == [("private", False)]
    assert "ACCESS_DENIED" in unlistable[0].message
    assert not [i for i in walked if isinstance(i, Rejected)]


def test_share_root_that_cannot_be_listed_stops_the_sync(
    domain: DomainFixture, tmp_path: object
) -> None:
    source = open_share(domain, "private", tmp_path)
    try:
        with pytest.raises(SourceUnavailableError) as err:
            list(source.walk())
        assert err.value.code == "ingest.source_denied"
    finally:
        source.close()


def test_wrong_password_and_missing_share_are_clear_errors(
    domain: DomainFixture, tmp_path: object
) -> None:
    from pathlib import Path

    bad = SmbSettings(username=domain.dc.account("svc-enclave"), password="wrong")  # type: ignore[arg-type]
    with pytest.raises(SourceUnavailableError) as err:
        SmbSource.open(domain.dc.url, bad, Path(str(tmp_path)))
    assert err.value.code == "ingest.source_denied"
    with pytest.raises(SourceUnavailableError) as err:
        SmbSource.open(
            f"smb://{domain.dc.ip}/nosuchshare", svc_settings(domain), Path(str(tmp_path))
        )
    assert err.value.code == "ingest.source_denied" and "nosuchshare" in err.value.message


def test_urls() -> None:
    u = parse_smb_url("smb://files.example.com:1445/Shared%20Docs/HR/2027")
    assert (u.host, u.port, u.share, u.path) == (
        "files.example.com",
        1445,
        "Shared Docs",
        "HR/2027",
    )
    assert str(parse_smb_url("smb://fs/docs")) == "smb://fs/docs"
    for bad in (
        "smb://svc:pw@fs/docs",
        "smb://svc@fs/docs",
        "smb://fs",
        "http://fs/docs",
        "smb://fs/docs/../x",
    ):
        with pytest.raises(SourceArgumentError):
            parse_smb_url(bad)
