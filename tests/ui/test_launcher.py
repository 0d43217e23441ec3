"""``enclave run``: clear errors before anything starts; the streamlit command it execs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ui.launcher import app, demo_password, streamlit_command


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
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("ui/app.py")
    for flag in (
        "--server.headless=true",
        "--server.port=8600",
        "--server.address=127.0.0.1",
        "--client.showErrorDetails=none",
        "--browser.gatherUsageStats=false",
    ):
        assert flag in cmd
    assert demo_password("erin") == "erin-demo-2026"
