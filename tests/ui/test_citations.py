"""Downloads of cited files: allowed only to readers, re-checked when the button is pressed."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import AccessDeniedError
from core.settings import load_settings
from policies.identity import Principal
from tests.ui.conftest import UIEnv
from ui.citations import _deferred_read, readable_path

pytestmark = pytest.mark.slow

ALICE = Principal("alice", frozenset({"staff"}))
HANA = Principal("hana", frozenset({"staff", "hr"}))


def test_only_readers_get_the_file(ui_env: UIEnv) -> None:
    settings = load_settings(ui_env.config)
    path = readable_path(settings, ALICE, "docs", "handbook/travel-policy.md")
    assert path == (ui_env.docs / "handbook/travel-policy.md").resolve()
    assert readable_path(settings, ALICE, "docs", "hr/salary-bands.md") is None
    assert readable_path(settings, HANA, "docs", "hr/salary-bands.md") is not None
    assert readable_path(settings, HANA, "unknown-source", "hr/salary-bands.md") is None
    assert readable_path(settings, HANA, "docs", "../enclave.toml") is None
    assert readable_path(settings, HANA, "docs", "handbook/missing.md") is None


def test_access_is_rechecked_at_download_time(ui_env: UIEnv, tmp_path: Path) -> None:
    settings = load_settings(ui_env.config)
    read = _deferred_read(settings, HANA, "docs", "hr/salary-bands.md")
    assert b"Band K7" in read()
    # HR removes hana from the hr group after the answer was shown: the same button now fails.
    directory = tmp_path / "directory.yaml"
    directory.write_text("users:\n  hana: {groups: [staff], roles: [employee]}\n")
    revoked = load_settings(ui_env.config, directory=directory)
    with pytest.raises(AccessDeniedError):
        _deferred_read(revoked, HANA, "docs", "hr/salary-bands.md")()
