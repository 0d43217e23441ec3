"""The DB-level sync lock on SQLite and PostgreSQL (the two-process test is in test_cli.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, update

from core.db import session_scope
from core.errors import SyncInProgressError
from ingest.sync.lock import SyncLock, current_holder, current_holders
from ingest.sync.state import SyncLockRow, open_state

STORE = "edge:/srv/enclave/index/enclave_chunks"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_holder_of_the_source_is_refused_with_who_holds_it(db_url: str) -> None:
    engine = open_state(db_url)
    first = SyncLock(engine, STORE, "handbook")
    assert first.acquire() is None
    first.set_run(42)
    try:
        with pytest.raises(SyncInProgressError) as info:
            SyncLock(engine, STORE, "handbook").acquire()
        assert "source 'handbook'" in info.value.message
        assert "run 42" in info.value.message
        assert info.value.code == "ingest.sync_running"
        holder = current_holder(engine, STORE, "handbook")
        assert holder is not None and holder.source == "handbook"
        # The same source in a different store is independent.
        other = SyncLock(engine, STORE + "-2", "handbook")
        assert other.acquire() is None
        other.release()
    finally:
        first.release()
    assert current_holder(engine, STORE, "handbook") is None
    again = SyncLock(engine, STORE, "handbook")
    assert again.acquire() is None
    again.release()


def test_other_sources_of_the_store_sync_in_parallel(db_url: str) -> None:
    """One lock per source: scheduled syncs of different shares no longer exit 3."""
    engine = open_state(db_url)
    hr, it = SyncLock(engine, STORE, "hr-share"), SyncLock(engine, STORE, "it-share")
    assert hr.acquire() is None
    try:
        assert it.acquire() is None
        try:
            assert {h.source for h in current_holders(engine, STORE)} == {"hr-share", "it-share"}
            with pytest.raises(SyncInProgressError, match="source 'it-share'"):
                SyncLock(engine, STORE, "it-share").acquire()
        finally:
            it.release()
        assert [h.source for h in current_holders(engine, STORE)] == ["hr-share"]
    finally:
        hr.release()
    assert current_holders(engine, STORE) == []


def test_dead_holder_on_this_host_is_taken_over(db_url: str) -> None:
    engine = open_state(db_url)
    now = time.time()
    with session_scope(engine) as s:
        s.add(
            SyncLockRow(
                store_key=SyncLock(engine, STORE, "handbook").key,
                store=STORE,
                token="t" * 32,
                run_id=7,
                source="handbook",
                pid=_dead_pid(),
                host=socket.gethostname(),
                acquired_at=now,
                heartbeat_at=now,
            )
        )
    lock = SyncLock(engine, STORE, "handbook")
    previous = lock.acquire()
    try:
        assert previous is not None and previous.pid != os.getpid() and previous.run_id == 7
        holder = current_holder(engine, STORE, "handbook")
        assert holder is not None and holder.pid == os.getpid()
    finally:
        lock.release()


def test_expired_heartbeat_on_another_host_is_taken_over(db_url: str) -> None:
    engine = open_state(db_url)
    key = SyncLock(engine, STORE, "handbook").key
    with session_scope(engine) as s:
        s.add(
            SyncLockRow(
                store_key=key,
                store=STORE,
                token="t" * 32,
                run_id=None,
                source="handbook",
                pid=1,
                host="other-host",
                acquired_at=0.0,
                heartbeat_at=time.time() - 3600,
            )
        )
    lock = SyncLock(engine, STORE, "handbook")
    assert lock.acquire() is not None
    lock.release()
    with session_scope(engine) as s:
        assert s.scalar(select(SyncLockRow)) is None


def test_live_holder_on_another_host_is_respected(db_url: str) -> None:
    engine = open_state(db_url)
    key = SyncLock(engine, STORE, "handbook").key
    with session_scope(engine) as s:
        s.add(
            SyncLockRow(
                store_key=key,
                store=STORE,
                token="t" * 32,
                run_id=None,
                source="handbook",
                pid=1,
                host="other-host",
                acquired_at=time.time(),
                heartbeat_at=time.time(),
            )
        )
    with pytest.raises(SyncInProgressError, match="pid 1 on other-host"):
        SyncLock(engine, STORE, "handbook").acquire()


def test_heartbeat_refreshes_and_detects_takeover(db_url: str) -> None:
    engine = open_state(db_url)
    lock = SyncLock(engine, STORE, "beat", heartbeat_s=0.1)
    lock.acquire()
    try:
        with session_scope(engine) as s:
            first = s.scalar(select(SyncLockRow.heartbeat_at))
        time.sleep(0.6)
        with session_scope(engine) as s:
            later = s.scalar(select(SyncLockRow.heartbeat_at))
        assert first is not None and later is not None and later > first
        assert not lock.lost
        with session_scope(engine) as s:  # another process steals the row
            s.execute(update(SyncLockRow).values(token="x" * 32))
        deadline = time.time() + 5
        while not lock.lost and time.time() < deadline:
            time.sleep(0.05)
        assert lock.lost
    finally:
        lock.release()
