"""open_index: backend selection and configuration errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.errors import ConfigError, IndexUnavailableError
from core.settings import Settings
from ingest.index import open_index
from ingest.index.edge import EdgeIndex
from ingest.index.qdrant import QdrantIndex


def test_default_is_edge_in_the_data_dir(tmp_path: Path) -> None:
    idx = open_index(Settings(data_dir=tmp_path))
    try:
        assert isinstance(idx, EdgeIndex)
        assert idx.path == tmp_path / "index" / "enclave_chunks"
        idx.ensure_collection(4)
        assert (tmp_path / "index" / "enclave_chunks" / "edge_config.json").exists()
    finally:
        idx.close()


def test_qdrant_local_mode_by_path(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, index={"backend": "qdrant", "qdrant_path": tmp_path / "q"})
    idx = open_index(s)
    try:
        assert isinstance(idx, QdrantIndex) and idx.count() == 0
    finally:
        idx.close()


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"backend": "qdrant"}, "neither 'index.qdrant_url'"),
        (
            {"backend": "qdrant", "qdrant_url": "http://127.0.0.1:6333", "qdrant_path": "x"},
            "both set",
        ),
    ],
)
def test_bad_backend_config_is_a_config_error(
    tmp_path: Path, index: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        open_index(Settings(data_dir=tmp_path, index=index))


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path,
        index={"backend": "qdrant", "qdrant_url": f"http://127.0.0.1:{port}", "timeout_s": 2},
    )
    with pytest.raises(IndexUnavailableError, match="unreachable") as info:
        open_index(settings)
    assert info.value.code == "index.unreachable" and f"127.0.0.1:{port}" in str(info.value)
