"""Fixtures for the parsing/chunking tests: generated sample documents and ingest settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import IngestSettings


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Norrbrook handbook rendered once per test session."""
    from samples.generate import generate

    out = tmp_path_factory.mktemp("samples")
    generate(out)
    return out


@pytest.fixture
def ingest_settings() -> IngestSettings:
    return IngestSettings()
