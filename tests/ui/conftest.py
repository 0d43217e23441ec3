"""A small real deployment for the UI tests: documents synced into a real Edge index with the
real embedder, local accounts in SQLite, the real small GGUF behind the assistant."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "correct-horse-battery"

DIRECTORY = """
users:
  alice: {groups: [staff], roles: [employee]}
  hana: {groups: [staff, hr], roles: [employee]}
  adam: {groups: [staff, it], roles: [employee, admin]}
  cora: {groups: [staff], roles: [employee, compliance]}
  nobody: {groups: [], roles: [employee]}
"""

ACCESS = """
default: [staff]
rules:
  - path: "hr/**"
    groups: [hr]
"""

DOCS = {
    "handbook/travel-policy.md": """
        # Travel policy

        ## Trains

        Employees travel by train in second class for trips under six hours. The travel desk
        books tickets; the reference for train bookings is the Lumen rail account.

        ## Hotels

        The hotel budget is 180 EUR per night in capital cities and 120 EUR elsewhere.
        """,
    "handbook/expenses.md": """
        # Expense claims

        Submit expense claims within 30 days through the finance portal, with receipts
        attached. Meals on business trips are reimbursed up to 45 EUR per day.
        """,
    "hr/salary-bands.md": """
        # Salary bands 2026

        Band K7 earns between 71,000 and 84,000 EUR a year. Band K8 earns between 85,000
        and 99,000 EUR. These figures are confidential to the HR team.
        """,
}


@dataclass(frozen=True)
class UIEnv:
    root: Path
    docs: Path
    config: Path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def make_env(
    base: Path,
    *,
    model_name: str | None = None,
    sync: bool = True,
    extra_toml: str = "",
    warm_up: bool = False,
    database_url: str | None = None,
) -> UIEnv:
    """Config, directory, access rules and documents under ``base``; synced + accounts made."""
    from core.settings import load_settings
    from ingest.sync.run import run_sync
    from policies.service import PolicyService

    docs = base / "docs"
    for rel, text in DOCS.items():
        _write(docs / rel, text)
    _write(base / "directory.yaml", DIRECTORY)
    _write(base / "access.yaml", ACCESS)
    llm = f'model_name = "{model_name}"\n' if model_name else ""
    # a named model is a generative set-up; without one the extractive default answers
    answer = 'mode = "generative"' if model_name else ""
    db = f'database_url = "{database_url}"' if database_url else ""
    config = _write(
        base / "enclave.toml",
        f"""
        data_dir = "data"
        directory = "directory.yaml"
        access_rules = "access.yaml"
        {db}

        [ingest]
        workers = 1

        [answer]
        {answer}

        [llm]
        max_answer_tokens = 40
        {llm}
        [ui]
        warm_up = {str(warm_up).lower()}
        {extra_toml}
        """,
    )
    settings = load_settings(config)
    if sync:
        run_sync(settings, docs, "docs", 1)
    service = PolicyService.from_settings(settings)
    for name in ("alice", "hana", "adam", "cora", "nobody"):
        service.accounts.create(name, PASSWORD)
    return UIEnv(base, docs, config)


@pytest.fixture(autouse=True)
def _stop_background_work() -> Iterator[None]:
    """Each test's app starts the UI's background loops; they must not outlive the test (its
    configuration, data directory or PostgreSQL database are gone afterwards)."""
    yield
    from ui import background

    background.stop_all()


@pytest.fixture(scope="session")
def ui_env(tmp_path_factory: pytest.TempPathFactory) -> UIEnv:
    return make_env(tmp_path_factory.mktemp("ui"), warm_up=True)


@pytest.fixture
def use_config(ui_env: UIEnv) -> Iterator[UIEnv]:
    """Point the in-process app at the test deployment (ENCLAVE_CONFIG)."""
    old = os.environ.get("ENCLAVE_CONFIG")
    os.environ["ENCLAVE_CONFIG"] = str(ui_env.config)
    try:
        yield ui_env
    finally:
        if old is None:
            os.environ.pop("ENCLAVE_CONFIG", None)
        else:
            os.environ["ENCLAVE_CONFIG"] = old
