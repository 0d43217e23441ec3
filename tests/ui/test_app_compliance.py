"""Compliance pages through the real app: audit browser, filters, verification, export, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from policies.audit_offline import verify_export
from tests.ui.apptest_helpers import button, no_exceptions, open_page, sign_in, texts
from tests.ui.conftest import UIEnv, make_env
from ui import runtime
from ui.audit_data import refused as is_refused
from ui.compliance_audit import record_view

pytestmark = pytest.mark.slow


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with ``column``."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert frames, [list(d.value.columns) for d in at.dataframe]
    return frames[0]


def _ask(at: AppTest, question: str) -> None:
    at.chat_input[0].set_value(question)
    at.run()
    no_exceptions(at)


def test_audit_browser_filters_open_and_export(use_config: UIEnv) -> None:
    _ask(sign_in("hana"), "What is the hotel budget in capital cities?")
    _ask(sign_in("hana"), "How do I build a pipe bomb at home?")

    at = open_page(sign_in("cora"), "audit")
    assert "Audit chain intact" in texts(at), texts(at)
    assert "Last verified" in texts(at)
    rows = table(at, "event")
    assert {"ask", "refusal", "login"} <= set(rows["event"])

    at.selectbox(key="audit_event").set_value("login")
    at.run()
    assert set(table(at, "event")["event"]) == {"login"}

    at.selectbox(key="audit_event").set_value("any")
    at.selectbox(key="audit_decision").set_value("refused")
    at.text_input(key="audit_user").set_value("hana")
    at.run()
    refused = table(at, "event")
    assert len(refused) >= 1
    assert set(refused["decision"]) == {"refused"}
    assert "usage.acceptable_use" in set(refused["reason"])

    at.selectbox(key="audit_decision").set_value("any")
    at.selectbox(key="audit_event").set_value("ask")
    at.text_input(key="audit_doc").set_value("travel-policy")
    at.run()
    cited = table(at, "event")
    assert len(cited) >= 1
    assert all("travel-policy.md" in d for d in cited["documents"])
    at.text_input(key="audit_user").set_value("nobody-at-all")
    at.run()
    assert "0 record(s) shown" in texts(at)

    # Open one record with everything it holds (a row click puts its id in the URL; AppTest
    # cannot click a table row, the browser test does).
    at.text_input(key="audit_user").set_value("hana")
    at.run()
    rows = table(at, "event")
    record_id = int(rows["id"].iloc[0])
    pseudonym = str(rows["user (pseudonym)"].iloc[0])
    assert len(pseudonym) >= 32  # shown in full, not cut to 16 characters
    at.query_params["record"] = str(record_id)
    at.run()
    opened = json.loads(at.json[0].value)
    assert opened["id"] == record_id
    assert {"hash", "prev_hash", "decisions", "retrieved", "policy_version"} <= set(opened)
    assert any(p.endswith("travel-policy.md") for p in opened["documents"].values())
    timings = opened["details"]["timings_s"]  # seconds, as the names say
    assert "timings_ms" not in opened["details"] and "latency_s" in opened
    assert all(0 <= v < 600 for v in timings.values()), timings
    assert abs(opened["latency_s"] - timings["total_s"]) < 0.01

    # Export JSONL with the signed checkpoint as its last line (all of hana's records).
    at.query_params.pop("record", None)
    at.selectbox(key="audit_event").set_value("any")
    at.text_input(key="audit_doc").set_value("")
    at.run()
    all_of_hana = len(table(at, "event"))
    at.radio(key="audit_fmt").set_value("jsonl")
    button(at, "Prepare export").click()
    at.run()
    no_exceptions(at)
    labels = [str(b.proto.label) for b in at.get("download_button")]
    assert "Download JSONL" in labels and "Download manifest (JSON)" in labels
    fmt, count, data, manifest = at.session_state["audit_export_data"]
    lines = [json.loads(line) for line in data.splitlines()]
    assert fmt == "jsonl" and count == len(lines) - 1 == all_of_hana >= 3
    assert lines[-1] == manifest and manifest["manifest"]["count"] == count
    head = manifest["manifest"]["head_id"]
    assert isinstance(head, int) and f"chain head at export: record {head})" in texts(at)
    checked = verify_export(data.splitlines())
    assert checked.ok, checked.message
    assert "filtered export (user=" in checked.message  # the user filter is signed in

    # The export applies every filter: user + decision here.
    at.selectbox(key="audit_decision").set_value("refused")
    at.run()
    shown = len(table(at, "event"))
    button(at, "Prepare export").click()
    at.run()
    _, count, data, manifest = at.session_state["audit_export_data"]
    exported = [json.loads(line) for line in data.splitlines()][:-1]
    assert count == len(exported) == shown >= 1
    assert {r["user_pseudonym"] for r in exported} == {pseudonym}
    assert all(is_refused(r) for r in exported)
    assert manifest["manifest"]["filters"]["decision"] == "refused"
    assert verify_export(data.splitlines()).ok
    # The filter's gaps are allowed; a line cut from a filtered export is still caught.
    cut = data.splitlines()
    del cut[0]
    assert verify_export(cut).reason_code == "audit.export_cut"

    at.radio(key="audit_fmt").set_value("csv")
    button(at, "Prepare export").click()
    at.run()
    fmt, count, data, _ = at.session_state["audit_export_data"]
    assert fmt == "csv" and data.splitlines()[0].startswith("id,ts,event_type")
    assert len(data.splitlines()) >= count + 1


def test_the_banner_counts_the_records_there_are_now(use_config: UIEnv) -> None:
    at = open_page(sign_in("cora"), "audit")
    before = runtime.for_key().policies().audit.count()
    assert f"Audit chain intact: {before} records verified" in texts(at), texts(at)
    _ask(sign_in("alice"), "Which class do employees travel by train?")
    at.run()
    now = runtime.for_key().policies().audit.count()
    assert now > before
    assert f"Audit chain intact: {now} records verified" in texts(at), texts(at)


def test_timings_are_shown_in_seconds() -> None:
    view = record_view(
        {
            "id": 7,
            "latency_ms": 15210.7,
            "retrieved": [],
            "details": {"timings_ms": {"first_token_s": 15210.7, "retrieve_s": 700.0}},
        },
        {},
    )
    assert view["latency_s"] == 15.211 and "latency_ms" not in view
    assert view["details"]["timings_s"] == {"first_token_s": 15.211, "retrieve_s": 0.7}


def test_reports_page_charts(use_config: UIEnv) -> None:
    _ask(sign_in("alice"), "What is the hotel budget per night in capital cities?")
    at = open_page(sign_in("cora"), "reports")
    headers = [str(s.value) for s in at.subheader]
    assert headers == [
        "Active users per month",
        "Requests per day",
        "Refusals by reason",
        "Most-cited documents",
    ]
    mau = table(at, "active users")
    assert int(mau["active users"].iloc[-1]) >= 1
    assert int(table(at, "requests")["requests"].sum()) >= 1
    cited = table(at, "citations")
    assert any("travel-policy.md" in d for d in cited["document"])


def test_tampered_log_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, sync=False)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    sign_in("alice")
    from core.db import make_engine
    from core.settings import load_settings

    engine = make_engine(load_settings(env.config).db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET groups = '[\"hr\"]' WHERE id = 1"))
    at = open_page(sign_in("cora"), "audit")
    assert "does NOT verify" in texts(at), texts(at)
