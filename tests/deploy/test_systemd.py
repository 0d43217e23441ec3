"""systemd units: `systemd-analyze verify` finds nothing to complain about, the hardening is
there, and `systemd-analyze security` rates each service's exposure as OK."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy import deployfiles as files

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def staged_units(tmp_path: Path) -> list[Path]:
    """Copies of the units whose ExecStart binaries exist: verify checks that they are
    executable, and /opt/enclave is not installed on the CI machine. Only the path prefix
    changes (to stub executables under tmp_path)."""
    if SYSTEMD_ANALYZE is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing in CI: .ci/run must install Debian's systemd")
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    staged = []
    for unit in files.systemd_units():
        text = unit.read_text()
        for _, key, value in files.unit_settings(unit):
            if key == "ExecStart":
                binary = Path(tmp_path / value.split()[0].lstrip("/"))
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.write_text("#!/bin/sh\nexit 0\n")
                binary.chmod(0o755)
        text = text.replace("ExecStart=/", f"ExecStart={tmp_path}/")
        target = tmp_path / unit.name
        target.write_text(text)
        staged.append(target)
    return staged


def test_units_are_present() -> None:
    names = {u.name for u in files.systemd_units()}
    assert {
        "enclave-ui.service",
        "enclave-llm.service",
        "enclave-ingest.service",
        "enclave-ingest.timer",
    } <= names


def test_systemd_analyze_verify_is_clean(staged_units: list[Path]) -> None:
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *map(str, staged_units)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and bad values (it only warns), so any output fails.
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == "", (
        result.stdout + result.stderr
    )


def test_verify_catches_a_broken_unit(staged_units: list[Path], tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    ui = next(u for u in staged_units if u.name == "enclave-ui.service")
    broken = tmp_path / "broken.service"
    broken.write_text(
        ui.read_text()
        .replace("ProtectSystem=strict", "ProtectSystem=strictly")
        .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    )
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(broken)], capture_output=True, text=True, timeout=60
    )
    out = result.stdout + result.stderr
    assert "NoNewPrivilege" in out and "strictly" in out


@pytest.mark.parametrize("unit", ["enclave-ui", "enclave-llm", "enclave-ingest"])
def test_security_exposure_is_ok(staged_units: list[Path], unit: str) -> None:
    assert SYSTEMD_ANALYZE is not None
    path = next(u for u in staged_units if u.name == f"{unit}.service")
    result = subprocess.run(
        # --threshold is on systemd's internal 0-100 scale (the printed level is that / 10)
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=40", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", result.stdout)
    assert level is not None and float(level.group(1)) <= 4.0 and level.group(2) == "OK"


@pytest.mark.parametrize("unit", ["enclave-ui", "enclave-llm", "enclave-ingest"])
def test_hardening_options(unit: str) -> None:
    settings = files.unit_settings(files.SYSTEMD_DIR / f"{unit}.service")
    service = {k: v for s, k, v in settings if s == "Service" and k != "Environment"}
    assert service["User"] not in {"", "root"}
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    if unit != "enclave-llm":
        assert service["ReadWritePaths"] == "/var/lib/enclave"
        assert service["PrivateDevices"] == "yes"
    else:  # the GPU, and nothing else
        assert service["DevicePolicy"] == "closed"


def test_secrets_are_credentials_not_environment() -> None:
    for unit in ("enclave-ui", "enclave-ingest", "enclave-llm"):
        settings = files.unit_settings(files.SYSTEMD_DIR / f"{unit}.service")
        creds = {v.split(":", 1)[0] for s, k, v in settings if k == "LoadCredential"}
        assert creds, unit
        env = files.unit_environment(files.SYSTEMD_DIR / f"{unit}.service")
        for name, value in env.items():
            if name.endswith("_FILE"):
                assert value.startswith("%d/") and value.removeprefix("%d/") in creds, name


def test_timer_runs_the_ingest_service() -> None:
    settings = files.unit_settings(files.SYSTEMD_DIR / "enclave-ingest.timer")
    timer = {k: v for s, k, v in settings if s == "Timer"}
    assert timer["Unit"] == "enclave-ingest.service" and timer["Persistent"] == "true"
    assert timer["OnCalendar"]
    ingest = dict(
        (k, v)
        for s, k, v in files.unit_settings(files.SYSTEMD_DIR / "enclave-ingest.service")
        if s == "Service"
    )
    assert ingest["Type"] == "oneshot"
    assert ingest["ExecStart"].split()[1:3] == ["sync", "/srv/shares/corp"]
    assert ingest["ReadOnlyPaths"] == "/srv/shares/corp"
