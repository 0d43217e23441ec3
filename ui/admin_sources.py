"""Admin: the synced sources, their files, chunks, syncs and failures; start a sync.

The page keeps itself current: a fragment re-renders the progress and every source's figures
every second while a sync runs (every five seconds otherwise, so a scheduled sync shows up),
and when a sync it watched ends the whole page reruns once, so
the result, a newly created source and the re-enabled Start button appear without a click.
File, folder and source names are shown as literal text (:func:`ui.render.literal`): a file
called ``![x](http://host/x.png)`` is a name, not an image.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st

from core.errors import EnclaveError, SourceArgumentError, SyncInProgressError
from ingest.sync.status import SourceStatus, collect_status, sync_holder
from policies.identity import Principal
from ui import runtime
from ui.render import literal
from ui.sync_runner import SyncState

NEW_SOURCE = "(a new source)"
_SEEN_KEY = "sources_seen_sync"
PHASES = {
    "starting": "starting",
    "repair": "getting ready",
    "sync": "reading, parsing and indexing files",
    "delete": "removing files that are gone",
    "done": "finishing",
}


def render(principal: Principal) -> None:
    st.title("Sources")
    statuses = collect_status(runtime.settings())
    _start_form(statuses)
    # Every second while a sync runs here; every few seconds otherwise, so a scheduled sync or
    # one another admin starts shows up too.
    every = 1.0 if runtime.sync_runner().running else 5.0
    st.fragment(_live, run_every=every)()
    st.caption(
        "While this UI serves the embedded index (Qdrant Edge), it owns the store: a command-"
        "line `ingest sync` hands its sync to this process, which runs it like a sync started "
        'here. With a Qdrant server (index.backend = "qdrant") syncs run from anywhere.'
    )


def _live() -> None:
    """Progress, the last result and every source; reruns the page when a sync ends."""
    state = runtime.sync_runner().state
    seen = st.session_state.get(_SEEN_KEY)
    if state is not None:
        marker = (state.source, state.started_at, state.running)
        if seen is not None and seen != marker and seen[2] and not state.running:
            st.session_state[_SEEN_KEY] = marker
            st.rerun()  # the sync this page watched has ended: refresh everything
        st.session_state[_SEEN_KEY] = marker
        if state.running:
            _running(state)
        else:
            _finished(state)
    statuses = collect_status(runtime.settings())
    if not statuses:
        st.info("No source has been synced yet. Start one above.")
    for status in statuses:
        _source(status)


def _when(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "-"


def plain_result(counters: dict[str, Any]) -> str:
    """A sync's counters in a sentence ("3 files added, 1 changed, …")."""

    def n(key: str) -> int:
        value = counters.get(key) or 0
        return int(value) if isinstance(value, (int, float)) else 0

    def files(count: int) -> str:
        return f"{count} file" + ("" if count == 1 else "s")

    parts = []
    for key, words in (
        ("added", "added"),
        ("updated", "changed"),
        ("renamed", "renamed or moved"),
        ("deleted", "removed"),
        ("permissions_updated", "with new permissions"),
    ):
        if n(key):
            parts.append(f"{files(n(key))} {words}")
    if not parts:
        parts.append("no file added, changed or removed")
    line = ", ".join(parts)
    if n("unchanged"):
        line += f"; {files(n('unchanged'))} unchanged"
    trouble = []
    if n("failed"):
        trouble.append(f"{files(n('failed'))} failed")
    if n("skipped"):
        trouble.append(f"{files(n('skipped'))} skipped")
    if trouble:
        line += "; " + " and ".join(trouble) + " (reasons below)"
    if n("embedded"):
        passages = "passage" if n("embedded") == 1 else "passages"
        line += f". {n('embedded')} {passages} indexed"
    if n("repaired") or n("orphans_removed"):
        line += f"; repaired after an interrupted sync: {n('repaired') + n('orphans_removed')}"
    return line + "."


def _source(status: SourceStatus) -> None:
    with st.container(border=True):
        st.subheader(literal(status.name))
        st.caption("Folder: " + literal(status.root))
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Files indexed", status.files.get("ok", 0))
        c2.metric("Failed", status.files.get("failed", 0))
        c3.metric("Skipped", status.files.get("skipped", 0))
        c4.metric("Chunks", status.chunks)
        pending = {k: v for k, v in status.files.items() if k not in ("ok", "failed", "skipped")}
        if pending:
            st.caption(
                "Being worked on: " + ", ".join(f"{v} {k}" for k, v in sorted(pending.items()))
            )
        last = status.last_sync
        if last is not None:
            took = f"{last.seconds:.1f} s" if last.seconds is not None else "still running"
            line = f"Last sync: **{last.status}**, started {_when(last.started_at)}, took {took}."
            if last.error_message:
                line += f" Error: {literal(last.error_message)} ({literal(last.error_code or '')})"
            st.markdown(line)
            if last.counters:
                st.caption(literal(plain_result(last.counters)))
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
        st.error(literal(exc.message))
    else:
        st.session_state[_SEEN_KEY] = None
        st.toast(f"Sync of '{literal(name)}' started.")
        st.rerun()  # the live part now refreshes every second


def _start(name: str, root: str, workers: int) -> None:
    from ingest.sources import is_smb
    from ingest.sync.run import check_root, check_source_name

    holder = sync_holder(runtime.settings())
    if holder is not None:
        raise SyncInProgressError(
            f"a sync of '{holder.source}' is already running (pid {holder.pid} on "
            f"{holder.host}); wait for it to finish"
        )
    if not root:
        raise SourceArgumentError("give the folder to sync")
    path: Path | str = root if is_smb(root) else check_root(Path(root))
    runtime.sync_runner().start(path, check_source_name(name), workers, index=runtime.index())


def running_lines(state: SyncState) -> tuple[str, str, str | None]:
    """Heading, progress label and current-file caption of a running sync (Markdown)."""
    phase = PHASES.get(state.phase, state.phase)
    heading = (
        f"**Syncing {literal(state.source)}**: {literal(phase)}. Folder: {literal(state.root)}"
    )
    if state.scanned:
        label = f"{state.processed} of {state.scanned} files checked, {state.chunks} passages"
    else:
        label = "Looking for new and changed files…"
    current = f"Now: {literal(state.current)}" if state.current else None
    return heading, label, current


def _running(state: SyncState) -> None:
    heading, label, current = running_lines(state)
    st.markdown(heading)
    fraction = state.fraction
    st.progress(fraction if fraction is not None else 0.0, text=label)
    if current:
        st.caption(current)


def _finished(state: SyncState) -> None:
    took = (state.finished_at or state.started_at) - state.started_at
    name = literal(state.source)
    if state.error is not None:
        st.error(
            f"The sync of {name} failed after {took:.1f} s: {literal(state.error)} "
            f"(error id {state.error_id})"
        )
        return
    st.success(
        f"The sync of {name} finished in {took:.1f} s: {literal(plain_result(state.counters))}"
    )
    if state.failed:
        st.dataframe(
            [{"file": p, "code": c, "reason": m} for p, c, m in state.failed],
            hide_index=True,
            width="stretch",
            key="sync_failed",
        )
