"""Fixtures for the assistant tests: the real small GGUF, loaded once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from assistant.llama_local import LlamaCppChat
from core.settings import Settings, load_settings
from policies.models import ensure_default_gguf

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def gguf_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_default_gguf(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def small_chat(gguf_path: Path) -> Iterator[LlamaCppChat]:
    """The packaged Gemma 3 270M through llama-cpp-python (context 2048 to keep tests light)."""
    chat = LlamaCppChat(model_path=str(gguf_path), n_ctx=2048, max_tokens=32, timeout_s=60)
    chat.warm_up()
    yield chat


@pytest.fixture(scope="session")
def sample_settings(tmp_path_factory: pytest.TempPathFactory, gguf_path: Path) -> Settings:
    """The generated Norrbrook sample documents synced into a real Qdrant Edge index with the
    real embedding model (samples/access-rules.yaml decides who reads what)."""
    from ingest.sync.run import run_sync
    from samples.generate import ACCESS_RULES, DIRECTORY, generate

    base = tmp_path_factory.mktemp("e2e")
    docs = base / "docs"
    docs.mkdir()
    generate(docs)
    # the shipped usage policy allows 12 questions a minute per user; the suite asks more
    usage = yaml.safe_load((REPO / "policies" / "default_usage.yaml").read_text())
    usage["limits"]["default"]["requests_per_minute"] = 1000
    (base / "usage.yaml").write_text(yaml.safe_dump(usage))
    settings = load_settings(
        data_dir=base / "data",
        access_rules=ACCESS_RULES,
        directory=DIRECTORY,
        llm={"model_path": str(gguf_path), "context_window": 2048, "max_answer_tokens": 48},
        policy={"usage_file": str(base / "usage.yaml")},
    )
    summary = run_sync(settings, docs, "samples", workers=1)
    assert summary.failed_count == 0 and summary.chunks > 0
    return settings
