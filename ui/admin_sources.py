"""Admin: the synced sources, their files, chunks, syncs and failures; start a sync."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from core.errors import EnclaveError, SourceArgumentError, SyncInProgressError
from ingest.sync.status import SourceStatus, collect_status, sync_holder
from policies.identity import Principal
from ui import runtime
from ui.render import neutralize
from ui.sync_runner import SyncState

NEW_SOURCE = "(a new source)"


def render(principal: Principal) -> None:
    st.title("Sources")
    settings = runtime.settings()
    statuses = collect_status(settings)
    _start_form(statuses)
    _progress()
    if not statuses:
        st.info("No source has been synced yet. Start one above.")
    for status in statuses:
        _source(status)
    st.caption(
        "While this UI serves the embedded index (Qdrant Edge), it owns the store: a command-"
        "line `ingest sync` hands its sync to this process, which runs it like a sync started "
        'here. With a Qdrant server (index.backend = "qdrant") syncs run from anywhere.'
    )


def _when(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "-"


def _source(status: SourceStatus) -> None:
    with st.container(border=True):
        st.subheader(neutralize(status.name))
        st.caption(f"Folder: {neutralize(status.root)}")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Files indexed", status.files.get("ok", 0))
        c2.metric("Failed", status.files.get("failed", 0))
        c3.metric("Skipped", status.files.get("skipped", 0))
        c4.metric("Chunks", status.chunks)
        pending = {k: v for k, v in status.files.items() if k not in ("ok", "failed", "skipped")}
        if pending:
            st.caption("Other states: " + ", ".join(f"{k} {v}" for k, v in sorted(pending.items())))
        last = status.last_sync
        if last is not None:
            took = f"{last.seconds:.1f} s" if last.seconds is not None else "still running"
            line = f"Last sync: **{last.status}**, started {_when(last.started_at)}, took {took}."
            if last.error_message:
                line += f" Error: {neutralize(last.error_message)} ({last.error_code})"
            st.markdown(line)
            if last.counters:
                st.caption(", ".join(f"{k}: {v}" for k, v in last.counters.items()))
        if status.running:
            st.info("A sync of this source is running now.")
        if status.recent_errors:
            st.markdown("**Failed and skipped files** (most recent)")
            st.dataframe(
                [
                    {
                        "file": e.path,
                        "state": e.status,
                        "reason": e.message or "",
                        "code": e.code or "",
                        "when": _when(e.at),
                    }
                    for e in status.recent_errors
                ],
                hide_index=True,
                width="stretch",
                key=f"errors_{status.name}",
            )


def _start_form(statuses: list[SourceStatus]) -> None:
    runner = runtime.sync_runner()
    with st.form("sync_start"):
        st.markdown("**Start a sync**")
        names = [s.name for s in statuses]
        choice = st.selectbox("Source", [*names, NEW_SOURCE], key="sync_choice")
        c1, c2 = st.columns(2)
        new_name = c1.text_input("New source name", key="sync_name")
        new_root = c2.text_input("Folder on this server (new source)", key="sync_root")
        workers = st.number_input(
            "Parser processes", 1, 16, runtime.settings().ingest.workers, key="sync_workers"
        )
        submitted = st.form_submit_button(
            "Start sync", type="primary", disabled=runner.running, icon=":material/sync:"
        )
    if not submitted:
        return
    if choice == NEW_SOURCE:
        name, root = new_name.strip(), new_root.strip()
    else:
        name = choice
        root = next(s.root for s in statuses if s.name == choice)
    try:
        _start(name, root, int(workers))
    except EnclaveError as exc:
        st.error(exc.message)
    else:
        st.toast(f"Sync of '{name}' started.")


def _start(name: str, root: str, workers: int) -> None:
    from ingest.sync.run import check_root, check_source_name

    holder = sync_holder(runtime.settings())
    if holder is not None:
        raise SyncInProgressError(
            f"a sync of '{holder.source}' is already running (pid {holder.pid} on "
            f"{holder.host}); wait for it to finish"
        )
    if not root:
        raise SourceArgumentError("give the folder to sync")
    path = check_root(Path(root))
    runtime.sync_runner().start(path, check_source_name(name), workers, index=runtime.index())


@st.fragment(run_every=1.0)
def _progress() -> None:
    state = runtime.sync_runner().state
    if state is None:
        return
    if state.running:
        _running(state)
    else:
        _finished(state)


def _running(state: SyncState) -> None:
    st.markdown(f"**Syncing '{state.source}'** ({state.phase}) from {state.root}")
    fraction = state.fraction
    label = f"{state.processed} of {state.scanned} files, {state.chunks} chunks"
    st.progress(fraction if fraction is not None else 0.0, text=label)
    if state.current:
        st.caption(f"Now: {state.current}")


def _finished(state: SyncState) -> None:
    took = (state.finished_at or state.started_at) - state.started_at
    if state.error is not None:
        st.error(
            f"The sync of '{state.source}' failed after {took:.1f} s: {state.error} "
            f"(error id {state.error_id})"
        )
        return
    counters = ", ".join(f"{k} {v}" for k, v in state.counters.items())
    st.success(f"The sync of '{state.source}' finished in {took:.1f} s: {counters}")
    if state.failed:
        st.dataframe(
            [{"file": p, "code": c, "reason": m} for p, c, m in state.failed],
            hide_index=True,
            width="stretch",
            key="sync_failed",
        )
