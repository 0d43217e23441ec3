"""Suite-wide guards: no outside network, no hub downloads, isolated settings."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _var in list(os.environ):
    if _var.startswith("ENCLAVE_") and not _var.startswith("ENCLAVE_TEST_"):
        del os.environ[_var]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlocked(RuntimeError):
    """Raised when code under test tries to reach a non-loopback address."""


def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = str(address[0])
        return host in {"localhost", "::1", "0.0.0.0"} or host.startswith("127.")
    return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}: outside network is blocked")
    _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}: outside network is blocked")
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    name = host.decode() if isinstance(host, bytes) else str(host) if host is not None else ""
    if name and name not in {"localhost", "::1", "0.0.0.0"} and not name.startswith("127."):
        raise NetworkBlocked(f"test tried to resolve {name!r}: outside network is blocked")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


def pg_url() -> str | None:
    """URL of the PostgreSQL server that .ci/run starts (``ENCLAVE_TEST_PG_URL``)."""
    return os.environ.get("ENCLAVE_TEST_PG_URL")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the CI server; skipped only outside CI."""
    import uuid

    from sqlalchemy import create_engine, text

    base = pg_url()
    if not base:
        if os.environ.get("CI"):
            pytest.fail("ENCLAVE_TEST_PG_URL is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip("ENCLAVE_TEST_PG_URL not set (PostgreSQL is started by .ci/run)")
    name = f"enclave_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        from core.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
