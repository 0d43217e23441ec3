"""Admin: the serving model and its licence status, the approved-models registry, quotas."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from core.errors import EnclaveError
from core.settings import Settings
from policies.identity import Principal
from ui import runtime
from ui.render import literal


@st.cache_data(ttl=60, show_spinner="Checking the model file…")
def _serving_check(_settings: Settings, key: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Identity + licence decision of the configured model (hashing is cached by file)."""
    from assistant.modelcheck import model_identity

    ident = model_identity(_settings)
    decision = runtime.policies().licence.check_servable(ident.model_name, ident.path, ident.sha256)
    return {
        "model": ident.model_name,
        "backend": _settings.llm.backend,
        "path": str(ident.path) if ident.path else None,
        "sha256": ident.sha256,
        "architecture": ident.info.architecture if ident.info else None,
        "context_length": ident.info.context_length if ident.info else None,
        "allowed": decision.allowed,
        "reason_code": decision.reason_code,
        "message": decision.message,
    }


def render(principal: Principal) -> None:
    st.title("Models and quotas")
    settings = runtime.settings()
    policies = runtime.policies()

    st.subheader("Serving model")
    check = _serving_check(settings, runtime.config_key())
    if check["allowed"]:
        st.success(
            f"**{literal(check['model'])}** may serve: approved, licence accepted, file hash OK."
        )
    else:
        st.error(f"**{literal(check['model'])}** may not serve: {literal(check['message'])}")
    hash_ok = check["reason_code"] not in (
        "licence.hash_mismatch",
        "licence.model_file_missing",
        "licence.hash_unverified",
        "licence.hash_not_configured",
    )
    st.dataframe(
        [
            {"field": "backend", "value": check["backend"]},
            {"field": "file", "value": check["path"] or "(remote server)"},
            {"field": "sha256", "value": check["sha256"] or "-"},
            {"field": "file hash OK", "value": "yes" if hash_ok else "no"},
            {"field": "architecture", "value": check["architecture"] or "-"},
            {"field": "trained context", "value": str(check["context_length"] or "-")},
            {"field": "decision", "value": check["reason_code"]},
        ],
        hide_index=True,
        width="stretch",
    )
    attribution = policies.licence.attribution_for(check["model"])
    if attribution:
        st.caption(f"Attribution shown to users: {attribution}")

    st.subheader("Approved models (licence registry)")
    rows = [
        {
            "model": s["model"],
            "name": s["display_name"],
            "licence": s["licence"],
            "acceptance needed": s["requires_acceptance"],
            "accepted by": s["accepted_by"] or "-",
            "accepted at": s["accepted_at"] or "-",
            "licence files present": s["licence_files_present"],
            "approved sha256": (s["sha256"] or "-")[:16],
        }
        for s in policies.licence.status()
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    _accept_licence(principal, [r["model"] for r in rows if r["acceptance needed"]])

    st.subheader("Quotas and acceptable use in force")
    usage = policies.usage
    st.markdown(
        f"Roles allowed to ask: **{', '.join(sorted(usage.allowed_roles))}** — "
        f"longest question: **{usage.max_input_chars}** characters."
    )
    _quota_editor(principal)
    st.caption(
        "Per UTC day and minute; a user gets their own entry, else the most generous of their "
        "groups, else the default. An empty cell is unlimited. Saving writes the usage policy "
        "file and is recorded in the audit log (event admin_change)."
    )
    st.dataframe(
        [{"category": c.id, "description": c.description} for c in usage.categories],
        hide_index=True,
        width="stretch",
    )
    mine = policies.gate.usage_today(principal)
    st.caption(
        f"Your own use today: {mine['requests']} requests, {mine['tokens']} tokens "
        f"(resets {mine['resets_at']})."
    )


def _accept_licence(principal: Principal, models: list[str]) -> None:
    """Record a licence acceptance (audited as licence_acceptance by the licence gate)."""
    if not models:
        return
    with st.expander("Accept a model licence", icon=":material/gavel:"):
        with st.form("licence_accept"):
            model = st.selectbox("Model", models, key="licence_model")
            statement = st.text_input(
                "Statement",
                key="licence_statement",
                placeholder="Below 700 million monthly active users",
                help="Confirms the licence's conditions; for Meta Llama 3, that the licensee's "
                "products had fewer than 700 million monthly active users.",
            )
            ref = st.text_input(
                "Reference of a licence granted by Meta (instead of the statement)",
                key="licence_ref",
            )
            submitted = st.form_submit_button("Accept the licence", type="primary")
        if submitted:
            try:
                acc = runtime.policies().licence.accept(model, principal, statement, ref or None)
            except EnclaveError as exc:
                st.error(literal(exc.message))
            else:
                _serving_check.clear()
                st.success(
                    f"Licence {literal(acc.licence_id)} accepted for {literal(acc.model_name)} by "
                    f"{literal(acc.accepted_by)} (audit record {acc.audit_id})."
                )


LIMIT_COLUMNS = {
    "requests_per_day": "requests per day",
    "tokens_per_day": "tokens per day",
    "requests_per_minute": "requests per minute",
}


def _quota_rows() -> list[dict[str, Any]]:
    usage = runtime.policies().usage
    rows = [{"applies to": "default", "name": "", **_cells(usage.default)}]
    rows += [
        {"applies to": "group", "name": g, **_cells(v)} for g, v in sorted(usage.groups.items())
    ]
    rows += [{"applies to": "user", "name": u, **_cells(v)} for u, v in sorted(usage.users.items())]
    return rows


def _cells(values: dict[str, int | None]) -> dict[str, int | None]:
    return {label: values.get(key) for key, label in LIMIT_COLUMNS.items()}


def quotas_from_rows(
    rows: list[dict[str, Any]],
) -> tuple[
    dict[str, int | None], dict[str, dict[str, int | None]], dict[str, dict[str, int | None]]
]:
    """The edited table back into (default, groups, users); raises ValueError on bad input."""
    default: dict[str, int | None] = {}
    groups: dict[str, dict[str, int | None]] = {}
    users: dict[str, dict[str, int | None]] = {}
    for row in rows:
        kind = str(row.get("applies to") or "").strip()
        name = str(row.get("name") or "").strip()
        values: dict[str, int | None] = {}
        for key, label in LIMIT_COLUMNS.items():
            raw = row.get(label)
            if raw is None or (isinstance(raw, float) and math.isnan(raw)) or raw == "":
                values[key] = None
                continue
            number = int(raw)
            if number < 0 or number != raw:
                raise ValueError(f"{label} must be a whole number of 0 or more")
            values[key] = number
        if kind == "default":
            default = values
        elif kind in ("group", "user"):
            if not name:
                raise ValueError(f"a {kind} row needs a name")
            (groups if kind == "group" else users)[name] = values
        elif kind or name:
            raise ValueError("'applies to' must be default, group or user")
    return default, groups, users


def _quota_editor(principal: Principal) -> None:
    edited = st.data_editor(
        _quota_rows(),
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key="quota_editor",
        column_config={
            "applies to": st.column_config.SelectboxColumn(
                options=["default", "group", "user"], required=True
            ),
            **{
                label: st.column_config.NumberColumn(min_value=0, step=1, format="%d")
                for label in LIMIT_COLUMNS.values()
            },
        },
    )
    if st.button("Save quotas", key="quota_save", icon=":material/save:"):
        try:
            default, groups, users = quotas_from_rows(list(edited))
            runtime.policies().set_usage_limits(principal, default, groups, users)
        except ValueError as exc:
            st.error(literal(str(exc)))
        except EnclaveError as exc:
            st.error(literal(exc.message))
        else:
            st.toast("Quotas saved and in force.")
            st.rerun()
