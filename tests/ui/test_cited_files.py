"""The file behind a citation: only what the index says this user may read, resolved without
following links, the indexed bytes only, with the account as it is now (issue 14, item 4)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import AccessDeniedError
from ingest.model import make_doc_id, make_point_id
from policies.identity import Principal
from tests.ui.conftest import UIEnv, make_env
from ui import runtime
from ui.citations import _deferred_read
from ui.cited_files import NOT_AVAILABLE, open_cited, readable_chunks

pytestmark = pytest.mark.slow

ALICE = Principal("alice", frozenset({"staff"}))
HANA = Principal("hana", frozenset({"staff", "hr"}))
TRAVEL = "handbook/travel-policy.md"
SALARY = "hr/salary-bands.md"


def chunk(rel_path: str, index: int = 0) -> str:
    return make_point_id(make_doc_id("docs", rel_path), index)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UIEnv]:
    """A deployment of its own (these tests change files under the synced root)."""
    made = make_env(tmp_path)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(made.config))
    yield made


@pytest.fixture
def shared(use_config: UIEnv) -> UIEnv:
    return use_config


def test_only_readers_get_the_file(shared: UIEnv) -> None:
    res = runtime.for_key()
    found = open_cited(res, ALICE, chunk(TRAVEL))
    assert found.data == (shared.docs / TRAVEL).read_bytes()
    assert found.name == "travel-policy.md" and found.source == "docs" and not found.is_pdf
    with pytest.raises(AccessDeniedError, match=NOT_AVAILABLE):
        open_cited(res, ALICE, chunk(SALARY))
    assert b"Band K7" in open_cited(res, HANA, chunk(SALARY)).data
    for bogus in ("", "not-a-point", make_point_id(make_doc_id("docs", "../enclave.toml"), 0)):
        with pytest.raises(AccessDeniedError):
            open_cited(res, HANA, bogus)
    nobody = Principal("nobody", frozenset())
    with pytest.raises(AccessDeniedError):
        open_cited(res, nobody, chunk(TRAVEL))
    assert readable_chunks(res, ALICE, [chunk(TRAVEL), chunk(SALARY)]) == {chunk(TRAVEL)}
    assert readable_chunks(res, HANA, [chunk(TRAVEL), chunk(SALARY)]) == {
        chunk(TRAVEL),
        chunk(SALARY),
    }


def test_a_cited_file_swapped_for_a_symlink_is_refused(env: UIEnv) -> None:
    """The attack of the security probe: a file alice may read is replaced by a link to a
    confidential one inside the same root. The old download resolved the link and served the
    salary bands."""
    res = runtime.for_key()
    assert open_cited(res, ALICE, chunk(TRAVEL)).data.startswith(b"# Travel policy")
    target = env.docs / TRAVEL
    target.unlink()
    target.symlink_to(env.docs / SALARY)
    with pytest.raises(AccessDeniedError, match=NOT_AVAILABLE):
        open_cited(res, ALICE, chunk(TRAVEL))
    # Not even the salary reader gets the linked bytes through the travel citation.
    with pytest.raises(AccessDeniedError):
        open_cited(res, HANA, chunk(TRAVEL))


def test_a_folder_swapped_for_a_symlink_is_refused(env: UIEnv) -> None:
    res = runtime.for_key()
    handbook = env.docs / "handbook"
    handbook.rename(env.docs / "handbook-real")
    fake = env.root / "elsewhere"
    fake.mkdir()
    (fake / "travel-policy.md").write_bytes(
        (env.docs / "handbook-real/travel-policy.md").read_bytes()
    )
    handbook.symlink_to(fake, target_is_directory=True)
    with pytest.raises(AccessDeniedError):
        open_cited(res, ALICE, chunk(TRAVEL))


def test_a_hard_link_or_a_changed_file_is_refused(env: UIEnv) -> None:
    """O_NOFOLLOW does not see hard links: the bytes must be the indexed ones."""
    res = runtime.for_key()
    target = env.docs / TRAVEL
    target.unlink()
    os.link(env.docs / SALARY, target)
    with pytest.raises(AccessDeniedError):
        open_cited(res, ALICE, chunk(TRAVEL))
    target.unlink()
    target.write_text("# Travel policy\n\nChanged after the sync.\n")
    with pytest.raises(AccessDeniedError):
        open_cited(res, ALICE, chunk(TRAVEL))


def test_the_index_decides_not_only_the_rules_file(env: UIEnv) -> None:
    """A rule loosened in the file but not yet synced grants nothing: the index still says
    hr only (retrieval would not return the chunk either)."""
    res = runtime.for_key()
    (env.root / "access.yaml").write_text("default: [staff]\nrules: []\n")
    with pytest.raises(AccessDeniedError):
        open_cited(res, ALICE, chunk(SALARY))


def test_a_rule_tightened_after_the_sync_applies_at_once(env: UIEnv) -> None:
    res = runtime.for_key()
    assert open_cited(res, ALICE, chunk(TRAVEL))
    (env.root / "access.yaml").write_text("default: [hr]\nrules: []\n")
    with pytest.raises(AccessDeniedError):
        open_cited(res, ALICE, chunk(TRAVEL))


def test_the_download_button_rechecks_the_account_when_pressed(env: UIEnv) -> None:
    read = _deferred_read(HANA, chunk(SALARY))
    assert b"Band K7" in read()
    # HR removes hana from the hr group after the answer was shown: the same button now fails.
    directory = env.root / "directory.yaml"
    directory.write_text(
        directory.read_text().replace("hana: {groups: [staff, hr]", "hana: {groups: [staff]")
    )
    os.utime(directory, ns=(os.stat(directory).st_mtime_ns + 10**9,) * 2)
    with pytest.raises(AccessDeniedError):
        read()
    runtime.for_key().policies().accounts.disable("alice")
    with pytest.raises(AccessDeniedError):
        _deferred_read(ALICE, chunk(TRAVEL))()


def test_a_cited_file_is_not_also_listed_as_unused() -> None:
    """Another chunk of a cited file is retrieved too: the file is cited, not "not used"."""
    from ui.citations import uncited_files

    cites = [{"n": 1, "path": "general/travel.pdf"}]
    also = [{"path": "general/travel.pdf"}, {"path": "it/vpn.md"}, {"path": "it/vpn.md"}]
    assert uncited_files(cites, also) == ["it/vpn.md"]
    assert uncited_files([], also) == ["general/travel.pdf", "it/vpn.md"]
