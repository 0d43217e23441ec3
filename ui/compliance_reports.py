"""Compliance: usage reports drawn from the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from policies.identity import Principal
from ui import runtime
from ui.audit_data import build_reports, doc_paths


def render(principal: Principal) -> None:
    st.title("Usage reports")
    months = st.slider("Months to cover", 1, 24, 12, key="reports_months")
    since = datetime.now(UTC) - timedelta(days=31 * months)
    reports = build_reports(runtime.policies().audit.iter_records(since=since))

    st.subheader("Active users per month")
    st.caption(
        "Distinct users who asked at least once (the Llama 3 licence's monthly-active-users "
        "figure). Users are counted by audit pseudonym."
    )
    _bar(reports.active_users_per_month, "month", "active users", "reports_mau")

    st.subheader("Requests per day")
    _bar(reports.requests_per_day, "day", "requests", "reports_daily")

    st.subheader("Refusals by reason")
    _bar(reports.refusals_by_reason, "reason", "refusals", "reports_refusals")

    st.subheader("Most-cited documents")
    top = dict(list(reports.cited_docs.items())[:15])
    paths = doc_paths(runtime.settings(), top)
    named = {paths.get(doc, doc[:12]): n for doc, n in top.items()}
    _bar(named, "document", "citations", "reports_cited", horizontal=True)


def _bar(data: dict[str, int], x: str, y: str, key: str, *, horizontal: bool = False) -> None:
    if not data:
        st.info("No data in this period yet.")
        return
    rows = [{x: k, y: v} for k, v in data.items()]
    st.bar_chart(rows, x=x, y=y, horizontal=horizontal)
    st.dataframe(rows, hide_index=True, key=f"{key}_table")
