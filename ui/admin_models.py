"""Admin: the serving model and its licence status, the approved-models registry, quotas."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.settings import Settings
from policies.identity import Principal
from ui import runtime


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
        st.success(f"**{check['model']}** may serve: approved, licence accepted, file hash OK.")
    else:
        st.error(f"**{check['model']}** may not serve: {check['message']}")
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
    st.caption("Accept a licence with `policies licence accept --model NAME` (audited).")

    st.subheader("Quotas and acceptable use in force")
    usage = policies.usage
    st.markdown(
        f"Roles allowed to ask: **{', '.join(sorted(usage.allowed_roles))}** — "
        f"longest question: **{usage.max_input_chars}** characters."
    )
    limits = [{"applies to": "everyone (default)", **_limits(usage.default)}]
    limits += [{"applies to": f"group {g}", **_limits(v)} for g, v in sorted(usage.groups.items())]
    limits += [{"applies to": f"user {u}", **_limits(v)} for u, v in sorted(usage.users.items())]
    st.dataframe(limits, hide_index=True, width="stretch")
    st.caption(
        "Per UTC day and minute; a user gets their own entry, else the most generous of their "
        "groups, else the default. Empty = unlimited."
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


def _limits(values: dict[str, int | None]) -> dict[str, str]:
    return {
        "requests per day": _fmt(values.get("requests_per_day", "-")),
        "tokens per day": _fmt(values.get("tokens_per_day", "-")),
        "requests per minute": _fmt(values.get("requests_per_minute", "-")),
    }


def _fmt(value: object) -> str:
    if value is None:
        return "unlimited"
    return str(value)
