"""Compliance: browse, open, verify and export the audit log."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import streamlit as st

from policies.audit import EVENT_TYPES
from policies.audit_chain import VerifyResult, canonical_json
from policies.audit_checkpoint import checkpoint_dict
from policies.audit_retention import export
from policies.identity import Principal
from ui import runtime
from ui.audit_data import AuditFilter, doc_ids_matching, doc_paths, reason_code, refused, search

ANY = "any"


class _LastVerification:
    """The last chain verification in this UI process (shared by every session)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.result: VerifyResult | None = None
        self.ran_at: float | None = None
        self.ran_by: str | None = None


@st.cache_resource(show_spinner=False)
def _last_verification(key: tuple[tuple[str, str], ...]) -> _LastVerification:
    return _LastVerification()


def render(principal: Principal) -> None:
    st.title("Audit log")
    _verification(principal)
    flt = _filters()
    records = search(runtime.policies().audit, flt)
    st.caption(f"{len(records)} record(s) shown (newest first, at most 500).")
    paths = doc_paths(
        runtime.settings(), {d["doc_id"] for r in records for d in r.get("retrieved") or []}
    )
    st.dataframe(
        [_row(r, paths) for r in records],
        hide_index=True,
        width="stretch",
        key="audit_table",
    )
    _open_record(records, paths)
    _export(flt)


def _filters() -> AuditFilter:
    with st.expander("Filters", expanded=True, icon=":material/filter_list:"):
        c1, c2, c3 = st.columns(3)
        user = c1.text_input("User", key="audit_user", placeholder="user name")
        event = c2.selectbox("Event type", [ANY, *sorted(EVENT_TYPES)], key="audit_event")
        decision = c3.selectbox("Decision", [ANY, "allowed", "refused"], key="audit_decision")
        c4, c5 = st.columns(2)
        today = datetime.now(UTC).date()
        span = c4.date_input(
            "Date range (UTC)", value=(today - timedelta(days=30), today), key="audit_dates"
        )
        document = c5.text_input("Document (part of its path)", key="audit_doc")
    since, until = _range(span)
    return AuditFilter(
        user_id=user.strip() or None,
        since=since,
        until=until,
        event_type=None if event == ANY else event,
        decision=None if decision == ANY else decision,
        doc_ids=doc_ids_matching(runtime.settings(), document) if document.strip() else None,
    )


def _range(span: Any) -> tuple[datetime | None, datetime | None]:
    days = list(span) if isinstance(span, (tuple, list)) else [span]
    days = [d for d in days if isinstance(d, date)]
    if not days:
        return None, None
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(days[-1], datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    return start, end


def _row(r: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    docs = sorted({paths.get(d["doc_id"], d["doc_id"][:12]) for d in r.get("retrieved") or []})
    return {
        "id": r["id"],
        "time (UTC)": r["ts"],
        "event": r["event_type"],
        "user (pseudonym)": (r.get("user_pseudonym") or "")[:16],
        "decision": "refused" if refused(r) else "allowed",
        "reason": reason_code(r) or "",
        "question": (r.get("question") or "")[:120],
        "documents": ", ".join(docs),
        "model": r.get("model_name") or "",
    }


def _open_record(records: list[dict[str, Any]], paths: dict[str, str]) -> None:
    if not records:
        return
    st.subheader("Open a record")
    ids = [r["id"] for r in records]
    chosen = st.selectbox("Record id", ids, key="audit_open")
    record = next(r for r in records if r["id"] == chosen)
    full = dict(record)
    full["documents"] = {
        d["doc_id"]: paths.get(d["doc_id"], "(no longer synced)")
        for d in record.get("retrieved") or []
    }
    st.json(full, expanded=True)


def _verification(principal: Principal) -> None:
    last = _last_verification(runtime.config_key())
    col1, col2 = st.columns([3, 1])
    with col2:
        run = st.button("Verify the chain now", key="audit_verify", icon=":material/verified:")
    if run or last.result is None:
        with st.spinner("Verifying the audit chain…"), last.lock:
            last.result = runtime.policies().audit.verify()
            last.ran_at = time.time()
            last.ran_by = principal.user_id
    result = last.result
    assert result is not None and last.ran_at is not None
    when = datetime.fromtimestamp(last.ran_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    with col1:
        if result.ok:
            st.success(f"{result.message}. Last verified {when} by {last.ran_by}.")
        else:
            st.error(
                f"The audit chain does NOT verify: {result.message} (first bad record "
                f"{result.first_bad_id}, code {result.reason_code}). Last verified {when}."
            )


def _export(flt: AuditFilter) -> None:
    st.subheader("Export")
    st.caption(
        "Exports the records of the date range above, then signs a checkpoint of the whole "
        "chain (JSONL: the last line; CSV: a separate checkpoint file)."
    )
    fmt = st.radio("Format", ["jsonl", "csv"], horizontal=True, key="audit_fmt")
    if st.button("Prepare export", key="audit_export", icon=":material/download:"):
        policies = runtime.policies()
        buf = io.StringIO()
        count, cp = export(
            policies.audit, policies.signing_key, buf, fmt, since=flt.since, until=flt.until
        )
        st.session_state["audit_export_data"] = (fmt, count, buf.getvalue(), checkpoint_dict(cp))
    prepared = st.session_state.get("audit_export_data")
    if prepared:
        fmt_done, count, data, cp_dict = prepared
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        st.write(f"{count} record(s), checkpoint at record {cp_dict.get('head_id')}.")
        st.download_button(
            f"Download {fmt_done.upper()}",
            data=data,
            file_name=f"enclave-audit-{stamp}.{fmt_done}",
            mime="application/jsonl" if fmt_done == "jsonl" else "text/csv",
            key="audit_dl",
        )
        st.download_button(
            "Download checkpoint (JSON)",
            data=canonical_json(cp_dict),
            file_name=f"enclave-audit-{stamp}.checkpoint.json",
            mime="application/json",
            key="audit_dl_cp",
        )
