"""What only a Qdrant server has: its version (scoped IDF needs >= 1.19, older ones are
refused) and its cluster (explicit shard layout, created once the expected peers joined).
qdrant-client's local mode reports neither, so the decisions are tested directly and the
settings plumbing through a spy on ``create_collection``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from qdrant_client import QdrantClient

from core.errors import ConfigError, VectorIndexError
from core.settings import Settings, load_settings
from ingest.index import open_index
from ingest.index.qdrant import (
    MIN_SCOPED_IDF_VERSION,
    ClusterNotReadyError,
    QdrantIndex,
    ServerTooOldError,
    check_server_version,
    parse_server_version,
    wait_for_peers,
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("1.19.0", (1, 19, 0)), ("v1.19.1", (1, 19, 1)), ("1.20.3-dev", (1, 20, 3))],
)
def test_parse_server_version(text: str, parsed: tuple[int, int, int]) -> None:
    assert parse_server_version(text) == parsed


def test_unreadable_version_is_an_error() -> None:
    with pytest.raises(VectorIndexError, match="cannot read the Qdrant server version"):
        parse_server_version("latest")


@pytest.mark.parametrize("old", ["1.15.5", "1.17.0", "1.18.9", "v1.18.3"])
def test_a_server_before_1_19_is_refused_with_scoped_idf(old: str) -> None:
    assert MIN_SCOPED_IDF_VERSION == (1, 19, 0)
    with pytest.raises(ServerTooOldError, match=r"ignores the per-query IDF corpus") as err:
        check_server_version(old, scoped_idf=True, where="http://qdrant:6333")
    assert err.value.code == "index.server_too_old"
    assert "http://qdrant:6333" in str(err.value) and old in str(err.value)


@pytest.mark.parametrize("new", ["1.19.0", "1.19.1", "1.20.0", "2.0.0"])
def test_a_server_from_1_19_is_accepted(new: str) -> None:
    check_server_version(new, scoped_idf=True, where="x")


def test_without_scoped_idf_any_version_is_accepted() -> None:
    check_server_version("1.15.5", scoped_idf=False, where="x")


class _FakeServer:
    """Stands in for qdrant-client's HTTP client at construction: a version and no collection."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.closed = False

    def info(self) -> Any:
        return SimpleNamespace(version=self.version)

    def collection_exists(self, name: str) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def test_the_index_checks_the_server_at_open(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[_FakeServer] = []

    def fake_client(**kwargs: Any) -> _FakeServer:
        made.append(_FakeServer(version))
        return made[-1]

    monkeypatch.setattr("ingest.index.qdrant.QdrantClient", fake_client)
    version = "1.15.5"
    with pytest.raises(ServerTooOldError):
        QdrantIndex(collection="c", url="http://qdrant:6333")
    assert made[-1].closed  # no client left open behind the error
    settings = Settings(index={"backend": "qdrant", "qdrant_url": "http://qdrant:6333"})
    with pytest.raises(ServerTooOldError):
        open_index(settings)
    version = "1.19.1"
    QdrantIndex(collection="c", url="http://qdrant:6333").close()
    version = "1.15.5"
    QdrantIndex(collection="c", url="http://qdrant:6333", scoped_idf=False).close()


def test_wait_for_peers_waits_then_returns() -> None:
    seen = iter([1, 2, 3])
    slept: list[float] = []
    clock = iter(range(100))
    count = wait_for_peers(
        lambda: next(seen),
        3,
        timeout_s=60,
        where="x",
        sleep=slept.append,
        clock=lambda: float(next(clock)),
    )
    assert count == 3 and len(slept) == 2


def test_wait_for_peers_gives_up_with_a_clear_error() -> None:
    clock = iter([0.0, 10.0, 700.0])
    with pytest.raises(ClusterNotReadyError, match="2 of the 3 peers"):
        wait_for_peers(
            lambda: 2, 3, timeout_s=600, where="x", sleep=lambda s: None, clock=lambda: next(clock)
        )


def test_wait_for_peers_without_cluster_mode() -> None:
    assert wait_for_peers(lambda: None, 1, timeout_s=0, where="x") == 1
    with pytest.raises(ClusterNotReadyError, match="without cluster mode"):
        wait_for_peers(lambda: None, 3, timeout_s=0, where="x")


def test_layout_settings_reach_create_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    real = QdrantClient.create_collection

    def spy(self: QdrantClient, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(QdrantClient, "create_collection", spy)
    config = tmp_path / "enclave.toml"
    config.write_text(
        f"[index]\nbackend = 'qdrant'\nqdrant_path = '{tmp_path / 'qdrant'}'\nshard_number = 6\n"
        "replication_factor = 2\nwrite_consistency_factor = 1\nexpected_peers = 3\n"
    )
    settings = load_settings(config)
    with open_index(settings) as index:
        index.ensure_collection(8)
    (kwargs,) = calls
    assert kwargs["shard_number"] == 6
    assert kwargs["replication_factor"] == 2
    assert kwargs["write_consistency_factor"] == 1


def test_unset_layout_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    real = QdrantClient.create_collection
    monkeypatch.setattr(
        QdrantClient,
        "create_collection",
        lambda self, *a, **k: calls.append(k) or real(self, *a, **k),
    )
    settings = Settings(index={"backend": "qdrant", "qdrant_path": tmp_path / "q"})
    with open_index(settings) as index:
        index.ensure_collection(8)
    assert not {"shard_number", "replication_factor", "write_consistency_factor"} & set(calls[0])


def test_impossible_layouts_fail_at_start(tmp_path: Path) -> None:
    config = tmp_path / "enclave.toml"
    config.write_text("[index]\nreplication_factor = 3\nexpected_peers = 2\n")
    with pytest.raises(ConfigError, match="replication_factor"):
        load_settings(config)
    config.write_text(
        "[index]\nreplication_factor = 2\nwrite_consistency_factor = 3\nexpected_peers = 2\n"
    )
    with pytest.raises(ConfigError, match="write_consistency_factor"):
        load_settings(config)
