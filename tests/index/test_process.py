"""The embedded stores (Qdrant Edge, and qdrant-client's local mode) are single-process, refuse
a second opener cleanly, and survive kill -9 after flush(). A Qdrant server serves any number of
processes, so this is not part of the VectorIndex contract (tests/index/contract.py)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import StoreLockedError
from ingest.encoding.sparse import encode_query
from ingest.index import open_index
from ingest.model import ChunkPoint
from tests.index.data import DIM, chunk, make_corpus, settings_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SINGLE_PROCESS_STORES = ("edge", "local")


@pytest.fixture(params=SINGLE_PROCESS_STORES)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def corpus() -> list[ChunkPoint]:
    return make_corpus()


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.index.child", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "READY":
        proc.kill()
        raise AssertionError(
            f"child not ready: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        )


def try_open(kind: str, root: Path) -> dict[str, object]:
    proc = spawn("try", kind, str(root))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.fixture
def holder(tmp_path: Path, backend: str) -> Iterator[subprocess.Popen[str]]:
    proc = spawn("hold", backend, str(tmp_path))
    wait_ready(proc)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_second_process_is_refused_with_a_clear_message(
    tmp_path: Path, backend: str, corpus: list[ChunkPoint]
) -> None:
    owner = open_index(settings_for(backend, tmp_path))
    try:
        owner.ensure_collection(DIM)
        owner.upsert(corpus)
        owner.flush()
        result = try_open(backend, tmp_path)
        assert result["locked"] is True and result["code"] == "index.locked"
        message = str(result["message"])
        assert str(tmp_path) in message
        assert f"pid {os.getpid()}" in message
        assert "UI" in message and "ingest sync" in message
        assert "admin page" in message and "Qdrant server" in message
        # the refused open changed nothing: the owner still reads and writes, data intact
        assert owner.count() == len(corpus)
        extra = chunk(
            random.Random(5),
            source="s",
            path="late.md",
            index=0,
            text="late arrival",
            groups=["eng"],
        )
        owner.upsert([extra])
        hits = owner.search(
            groups=frozenset({"eng"}), sparse=encode_query("late arrival"), mode="lexical", limit=1
        )
        assert hits[0].id == extra.id
        assert owner.count() == len(corpus) + 1
    finally:
        owner.close()
    # once the owner is gone another process opens the same store and sees everything
    assert try_open(backend, tmp_path) == {"locked": False, "count": len(corpus) + 1}


def test_refused_when_another_process_holds_it(
    tmp_path: Path, backend: str, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(StoreLockedError) as info:
        open_index(settings_for(backend, tmp_path))
    assert f"pid {holder.pid}" in str(info.value) and "child.py hold" in str(info.value)
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(timeout=60)
    idx = open_index(settings_for(backend, tmp_path))  # released on close
    idx.close()


def test_same_process_second_handle_is_refused(tmp_path: Path, backend: str) -> None:
    first = open_index(settings_for(backend, tmp_path))
    try:
        with pytest.raises(StoreLockedError, match="this same process"):
            open_index(settings_for(backend, tmp_path))
    finally:
        first.close()


def test_flushed_writes_survive_kill_9(tmp_path: Path, backend: str) -> None:
    n = 200
    proc = spawn("write-die", backend, str(tmp_path), str(n))
    wait_ready(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    idx = open_index(settings_for(backend, tmp_path))  # the kernel dropped the dead holder's lock
    try:
        idx.ensure_collection(DIM)
        assert idx.count() == n
        pairs = list(idx.iter_doc_ids())
        assert len({pid for pid, _ in pairs}) == n and len({d for _, d in pairs}) == n // 4
        hits = idx.search(
            groups=frozenset({"eng"}), sparse=encode_query("chunk 123"), mode="lexical", limit=1
        )
        assert hits[0].payload["text"] == "crash test chunk 123"
    finally:
        idx.close()
