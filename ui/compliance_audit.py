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
from policies.audit_retention import export
from policies.identity import Principal
from ui import runtime
from ui.audit_data import (
    AuditFilter,
    doc_ids_matching,
    doc_paths,
    matches,
    reason_code,
    refused,
    search,
)
from ui.render import literal

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
    st.caption(
        f"{len(records)} record(s) shown (newest first, at most 500). Click a row to open it."
    )
    paths = doc_paths(
        runtime.settings(), {d["doc_id"] for r in records for d in r.get("retrieved") or []}
    )
    event = st.dataframe(
        [_row(r, paths) for r in records],
        hide_index=True,
        width="stretch",
        key="audit_table",
        on_select="rerun",
        selection_mode="single-row",
    )
    selected = list(getattr(getattr(event, "selection", None), "rows", None) or [])
    if selected and selected[0] < len(records):
        st.query_params[RECORD_PARAM] = str(records[selected[0]]["id"])
    _open_record(records, paths)
    _export(principal, flt)


RECORD_PARAM = "record"


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
        "user (pseudonym)": r.get("user_pseudonym") or "",
        "decision": "refused" if refused(r) else "allowed",
        "reason": reason_code(r) or "",
        "question": (r.get("question") or "")[:120],
        "documents": ", ".join(docs),
        "model": r.get("model_name") or "",
    }


def record_view(record: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """A record as the page shows it: document paths added, times in seconds as named.

    The assistant records its stage timings in milliseconds under ``details.timings_ms`` (with
    keys such as ``first_token_s``); shown here as ``timings_s`` in seconds, like the total
    latency (``latency_ms`` -> ``latency_s``). Everything else is as stored (and exported)."""
    view = dict(record)
    view["documents"] = {
        d["doc_id"]: paths.get(d["doc_id"], "(no longer synced)")
        for d in record.get("retrieved") or []
    }
    latency = record.get("latency_ms")
    if isinstance(latency, (int, float)):
        view.pop("latency_ms", None)
        view["latency_s"] = round(latency / 1000, 3)
    details = record.get("details")
    if isinstance(details, dict) and isinstance(details.get("timings_ms"), dict):
        details = dict(details)
        ms = details.pop("timings_ms")
        details["timings_s"] = {
            str(k).removesuffix("_ms").removesuffix("_s") + "_s": round(float(v) / 1000, 3)
            for k, v in ms.items()
            if isinstance(v, (int, float))
        }
        view["details"] = details
    return view


def _open_record(records: list[dict[str, Any]], paths: dict[str, str]) -> None:
    wanted = st.query_params.get(RECORD_PARAM)
    if not wanted or not str(wanted).isdigit():
        return
    record = next((r for r in records if r["id"] == int(wanted)), None)
    if record is None:
        found = runtime.policies().audit.records(after_id=int(wanted) - 1, limit=1)
        record = found[0] if found and found[0]["id"] == int(wanted) else None
    if record is None:
        st.info(f"Record {int(wanted)} does not exist.")
        return
    if record not in records:
        paths = doc_paths(runtime.settings(), {d["doc_id"] for d in record.get("retrieved") or []})
    head, close = st.columns([5, 1])
    head.subheader(f"Record {record['id']}")
    if close.button("Close", key="audit_close", icon=":material/close:"):
        st.query_params.pop(RECORD_PARAM, None)
        st.rerun()
    st.json(record_view(record, paths), expanded=True)


def _verification(principal: Principal) -> None:
    """The chain's state as of the current head: verified again whenever records were added
    since the last verification (so the count shown is the log's count now)."""
    last = _last_verification(runtime.config_key())
    audit = runtime.policies().audit
    col1, col2 = st.columns([3, 1])
    with col2:
        run = st.button("Verify the chain now", key="audit_verify", icon=":material/verified:")
    head_id, _ = audit.head()
    stale = last.result is None or last.result.head_id != head_id
    if run or stale:
        with st.spinner("Verifying the audit chain…"), last.lock:
            last.result = audit.verify()
            last.ran_at = time.time()
            last.ran_by = principal.user_id if run else f"{principal.user_id} (automatic)"
    result = last.result
    assert result is not None and last.ran_at is not None
    when = datetime.fromtimestamp(last.ran_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    with col1:
        if result.ok:
            st.success(
                f"Audit chain intact: {result.checked} "
                f"record{'' if result.checked == 1 else 's'} verified, up to record "
                f"{result.head_id}. Last verified {when} by {literal(last.ran_by or '')}."
            )
        else:
            st.error(
                f"The audit chain does NOT verify: {literal(result.message)} (first bad record "
                f"{result.first_bad_id}, code {result.reason_code}). Last verified {when}."
            )


def _export(principal: Principal, flt: AuditFilter) -> None:
    st.subheader("Export")
    st.caption(
        "Exports the records every filter above selects (user, event type, decision, "
        "document, dates) with a signed manifest of exactly what was exported (JSONL: the last "
        "line; CSV: a separate manifest file). `policies audit verify-export` checks it; the "
        "export itself is audited."
    )
    fmt = st.radio("Format", ["jsonl", "csv"], horizontal=True, key="audit_fmt")
    if st.button("Prepare export", key="audit_export", icon=":material/download:"):
        policies = runtime.policies()
        buf = io.StringIO()
        count, manifest = export(
            policies.audit,
            policies.signing_key,
            buf,
            fmt,
            since=flt.since,
            until=flt.until,
            actor=principal.user_id,
            policy_version=policies.version,
            event_type=flt.event_type,
            user_id=flt.user_id,
            keep=lambda record: matches(record, flt),
            filters=_filter_description(flt),
        )
        st.session_state["audit_export_data"] = (fmt, count, buf.getvalue(), manifest.to_dict())
    prepared = st.session_state.get("audit_export_data")
    if prepared:
        fmt_done, count, data, manifest_dict = prepared
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        body = manifest_dict.get("manifest") or {}
        st.write(
            f"{count} record(s) exported; the signed manifest covers records "
            f"{body.get('first_id')}..{body.get('last_id')} (chain head at export: record "
            f"{body.get('head_id')})."
        )
        st.download_button(
            f"Download {fmt_done.upper()}",
            data=data,
            file_name=f"enclave-audit-{stamp}.{fmt_done}",
            mime="application/jsonl" if fmt_done == "jsonl" else "text/csv",
            key="audit_dl",
        )
        st.download_button(
            "Download manifest (JSON)",
            data=canonical_json(manifest_dict),
            file_name=f"enclave-audit-{stamp}.manifest.json",
            mime="application/json",
            key="audit_dl_cp",
        )


def _filter_description(flt: AuditFilter) -> dict[str, str]:
    """The filters beyond the date range, as the signed manifest names them."""
    out: dict[str, str] = {}
    if flt.user_id:
        out["user"] = flt.user_id
    if flt.event_type:
        out["event"] = flt.event_type
    if flt.decision:
        out["decision"] = flt.decision
    if flt.doc_ids is not None:
        out["documents"] = ",".join(sorted(flt.doc_ids))
    return out
