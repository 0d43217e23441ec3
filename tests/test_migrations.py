"""Every package's Alembic history is one line: a merge of two branches that both add a
revision after the same parent leaves two heads, and ``upgrade head`` then refuses to run."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["ingest", "policies", "assistant"])
def test_one_head_per_package(package: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(REPO / package / "migrations"))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"{package} has several migration heads: {heads}"
