"""``embedding.backend = "openai"`` against a REAL OpenAI-compatible server: infinity-emb serving
the packaged all-MiniLM-L6-v2 on loopback, started by the test from its own virtualenv.

``TestOpenAIEmbedder`` runs the shared ``EmbedderContract`` (tests/encoding/contract.py) against
the real server, plus what is specific to a served model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.errors import EmbeddingChangedError, EmbeddingNotServedError, EmbeddingServiceError
from core.settings import EmbeddingSettings, load_settings
from ingest.encoding.embed import Embedder, load_embedder
from ingest.encoding.openai import OpenAIEmbedder
from tests.encoding.contract import EmbedderContract
from tests.index.infinity import SERVED_NAME, infinity, infinity_binary

pytestmark = pytest.mark.slow

TEXTS = [
    "How do I request parental leave?",
    "The VPN client must be installed before you travel.",
    "Reisekosten werden innerhalb von 30 Tagen erstattet.",
    "休假政策适用于所有员工",
    "SELECT name FROM employees WHERE badge_id = 42;",
    "a",
    "Expense claims: " + "receipts, approvals and per-diem rules apply to every trip. " * 40,
]


@pytest.fixture(scope="module")
def infinity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = infinity_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("infinity_emb is missing in CI: .ci/run must create .ci/venv-infinity")
        pytest.skip("infinity-emb not installed (ENCLAVE_TEST_INFINITY, or .ci/venv-infinity)")
    with infinity(binary, tmp_path_factory.mktemp("infinity") / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def service_settings(infinity_server: str) -> EmbeddingSettings:
    return EmbeddingSettings(backend="openai", base_url=infinity_server, model=SERVED_NAME)


@pytest.fixture(scope="module")
def in_process() -> Embedder:
    return load_embedder(EmbeddingSettings())


class TestOpenAIEmbedder(EmbedderContract):
    """What every embedder promises, and the served model's name and dimension."""

    @pytest.fixture
    def embedder(self, service_settings: EmbeddingSettings) -> Embedder:
        return load_embedder(service_settings)

    def test_reports_model_and_dimension(self, embedder: Embedder) -> None:
        assert embedder.model_id == SERVED_NAME and embedder.dim == 384

    def test_vectors_are_unit_length_one_per_text(self, embedder: Embedder) -> None:
        vectors = embedder.embed_documents(TEXTS)
        assert len(vectors) == len(TEXTS)
        for v in vectors:
            assert len(v) == embedder.dim
            assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5)
        assert embedder.embed_documents([]) == []

    def test_query_is_the_document_vector(self, embedder: Embedder) -> None:
        q = "Who approves travel over 2,000 EUR?"
        assert embedder.embed_query(q) == pytest.approx(embedder.embed_documents([q])[0], abs=1e-6)

    def test_related_text_is_closer_than_unrelated(self, embedder: Embedder) -> None:
        q = embedder.embed_query("How do I get reimbursed for a business trip?")
        related = embedder.embed_query("Submit travel expense claims within 30 days.")
        unrelated = embedder.embed_query("The fire alarm is tested every Tuesday morning.")
        assert _cos(q, related) > _cos(q, unrelated) + 0.2

    def test_thread_safe_and_order_preserving(self, embedder: Embedder) -> None:
        texts = [f"policy number {i} about laptops and badges" for i in range(40)]
        expected = embedder.embed_documents(texts)
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(embedder.embed_query, texts))
        for a, b in zip(got, expected, strict=True):
            assert a == pytest.approx(b, abs=1e-5)


def test_server_vectors_match_in_process_vectors(
    service_settings: EmbeddingSettings, in_process: Embedder
) -> None:
    """Same model behind the service: the index gets the same vectors as from an in-process
    sync (long texts included: both truncate at 256 tokens)."""
    served = load_embedder(service_settings.model_copy(update={"concurrent_requests": 3}))
    served_vecs = served.embed_documents(TEXTS * 6)  # several requests at once (batch 32)
    local_vecs = in_process.embed_documents(TEXTS * 6)
    cosines = [_cos(a, b) for a, b in zip(served_vecs, local_vecs, strict=True)]
    assert min(cosines) >= 0.9999, cosines


def test_a_model_the_server_does_not_serve_is_refused(infinity_server: str) -> None:
    settings = EmbeddingSettings(backend="openai", base_url=infinity_server, model="bge-m3")
    with pytest.raises(EmbeddingNotServedError, match="bge-m3") as info:
        load_embedder(settings)
    assert info.value.exit_code == 2 and SERVED_NAME in info.value.message


def test_an_unreachable_server_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EmbeddingServiceError, match=f"127.0.0.1:{port}.*cannot be reached"):
        OpenAIEmbedder(base_url=f"http://127.0.0.1:{port}/v1", model="x", max_retries=1).warm_up()


def test_sync_through_the_service_checks_model_and_dimension_at_start(
    infinity_server: str, tmp_path: Path
) -> None:
    """An index built in process continues through the service (same model); a service whose
    dimension differs from the collection's is refused before anything is parsed."""
    from core.db import session_scope
    from ingest.index import open_index
    from ingest.sync.lock import store_identity, store_key
    from ingest.sync.run import run_sync
    from ingest.sync.state import FileRow, IndexMetaRow, open_state
    from tests.ingest.conftest import DOCS, dump_index, write_config, write_docs

    root = tmp_path / "share"
    write_docs(root, dict(list(DOCS.items())[:3]))
    cfg = write_config(tmp_path / "cfg", tmp_path / "data")
    run_sync(load_settings(cfg), root, "handbook", workers=1)  # in process (torch)
    before = dump_index(load_settings(cfg))
    write_docs(root, dict(list(DOCS.items())[3:]))
    service_cfg = write_config(
        tmp_path / "cfg2",
        tmp_path / "data",
        extra=f'[embedding]\nbackend = "openai"\nbase_url = "{infinity_server}"\n',
    )
    service = load_settings(service_cfg)
    summary = run_sync(service, root, "handbook", workers=1)
    assert summary.added == 3 and summary.embedded == summary.chunks > 0
    after = dump_index(service)
    assert all(after[pid]["hash"] == before[pid]["hash"] for pid in before)
    # A collection built with 768-dimensional vectors under the same model name (another
    # model served as "all-MiniLM-L6-v2"): refused at start, before any file is read.
    other_cfg = write_config(
        tmp_path / "cfg3",
        tmp_path / "data768",
        extra=f'[embedding]\nbackend = "openai"\nbase_url = "{infinity_server}"\n',
    )
    other = load_settings(other_cfg)
    engine = open_state(other.db_url)
    with open_index(other) as index:
        index.ensure_collection(768)
    with session_scope(engine) as s:
        s.add(
            IndexMetaRow(
                store_key=store_key(store_identity(other)), embedding_model="default", dim=768
            )
        )
    with pytest.raises(EmbeddingChangedError, match="768-dimensional"):
        run_sync(other, root, "handbook", workers=1)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(FileRow)) == 0


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))
