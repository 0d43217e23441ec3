"""The vector index: one protocol (:mod:`ingest.index.base`), two backends.

``open_index(settings)`` picks the backend from ``settings.index.backend``:

- ``edge`` (default): Qdrant Edge in ``<data_dir>/index/<collection>`` — embedded, one process.
- ``qdrant``: a Qdrant server at ``index.qdrant_url`` (+ ``index.qdrant_api_key``), or
  qdrant-client's local mode at ``index.qdrant_path`` (single-process, slow: tests and trials).

The caller owns the returned index and must ``close()`` it (it is also a context manager); an
embedded store held by another process raises :class:`~core.errors.StoreLockedError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import ConfigError
from ingest.index.base import DENSE_VECTOR, SPARSE_VECTOR, VectorIndex

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["DENSE_VECTOR", "SPARSE_VECTOR", "VectorIndex", "open_index"]


def open_index(settings: Settings) -> VectorIndex:
    """Open (not create) the configured index; call ``ensure_collection(dim)`` before writing."""
    cfg = settings.index
    if cfg.backend == "edge":
        from ingest.index.edge import EdgeIndex

        return EdgeIndex(settings.index_dir / cfg.collection, scoped_idf=cfg.scoped_idf)
    if cfg.backend == "qdrant":
        from ingest.index.qdrant import QdrantIndex

        if cfg.qdrant_url and cfg.qdrant_path:
            raise ConfigError(
                "config keys 'index.qdrant_url' and 'index.qdrant_path' are both set: use the "
                "url for a Qdrant server or the path for qdrant-client's local mode, not both"
            )
        if cfg.qdrant_url:
            key = cfg.qdrant_api_key.get_secret_value() if cfg.qdrant_api_key else None
            return QdrantIndex(
                collection=cfg.collection,
                url=cfg.qdrant_url,
                api_key=key,
                timeout_s=cfg.timeout_s,
                scoped_idf=cfg.scoped_idf,
                shard_number=cfg.shard_number,
                replication_factor=cfg.replication_factor,
                write_consistency_factor=cfg.write_consistency_factor,
                expected_peers=cfg.expected_peers,
                peers_wait_s=cfg.peers_wait_s,
            )
        if cfg.qdrant_path:
            return QdrantIndex(
                collection=cfg.collection,
                path=cfg.qdrant_path,
                scoped_idf=cfg.scoped_idf,
                shard_number=cfg.shard_number,
                replication_factor=cfg.replication_factor,
                write_consistency_factor=cfg.write_consistency_factor,
            )
        raise ConfigError(
            "config key 'index.backend' is 'qdrant' but neither 'index.qdrant_url' (server) nor "
            "'index.qdrant_path' (local mode) is set"
        )
    raise ConfigError(f"config key 'index.backend': unknown backend {cfg.backend!r}")
