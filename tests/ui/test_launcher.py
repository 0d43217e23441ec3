"""``enclave run``: clear errors before anything starts; the streamlit command it execs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import LoginFailed
from core.settings import load_settings
from policies.service import PolicyService
from ui.launcher import SAMPLES, app, create_demo_users, demo_password, streamlit_command


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "config file not found" in result.output
    assert "Traceback" not in result.output


def test_invalid_config_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "enclave.toml"
    config.write_text('[ui]\nauth = "magic"\n')
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "ui.auth" in result.output


def test_streamlit_runs_headless_without_error_details_or_telemetry() -> None:
    cmd = streamlit_command(8600, "127.0.0.1")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("ui/server.py")
    for flag in (
        "--server.headless=true",
        "--server.port=8600",
        "--server.address=127.0.0.1",
        "--client.showErrorDetails=none",
        "--browser.gatherUsageStats=false",
    ):
        assert flag in cmd
    assert demo_password("erin") == "erin-demo-2026"


def test_demo_mode_never_touches_accounts_of_a_real_directory(tmp_path: Path) -> None:
    """Issue 14, item 8: ``enclave run --sync-samples --config yours`` used to reset the
    password of every user in *your* directory, admins included, to a published one."""
    directory = tmp_path / "directory.yaml"
    directory.write_text(
        "users:\n  root: {groups: [it], roles: [employee, admin]}\n"
        "  alice: {groups: [finance], roles: [employee, admin]}\n"
    )
    settings = load_settings(None, data_dir=tmp_path / "data", directory=directory)
    service = PolicyService.from_settings(settings)
    service.accounts.create("root", "the-real-root-password")
    service.accounts.create("alice", "the-real-alice-password")

    assert create_demo_users(settings) == []

    service.authenticate("root", "the-real-root-password")
    service.authenticate("alice", "the-real-alice-password")
    with pytest.raises(LoginFailed):
        service.authenticate("alice", demo_password("alice"))
    assert {a.name for a in service.accounts.list()} == {"root", "alice"}


def test_demo_mode_creates_the_sample_accounts_with_the_sample_directory(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", directory=SAMPLES / "directory.yaml")
    service = PolicyService.from_settings(settings)
    service.accounts.create("ops", "an-operator-password")  # not a sample user: left alone
    touched = create_demo_users(settings)
    assert set(touched) == {"alice", "bob", "carol", "dave", "erin", "frank"}
    assert service.authenticate("erin", demo_password("erin")).user_id == "erin"
    service.authenticate("ops", "an-operator-password")
