"""Thumbs up/down with an optional comment on an answer, recorded in the audit log."""

from __future__ import annotations

import streamlit as st

from assistant.history import StoredMessage
from policies.identity import Principal
from ui import runtime

RATINGS = {1: "up", -1: "down"}


def record_feedback(principal: Principal, message: StoredMessage, rating: int, comment: str) -> int:
    """Audit the feedback (event ``feedback``), remember it on the message; the audit id."""
    policies = runtime.policies()
    comment = comment.strip()
    audit_id = policies.audit.append(
        "feedback",
        principal=principal,
        policy_version=policies.version,
        details={
            "rating": RATINGS[rating],
            "comment": policies.pii.mask(comment) if comment else None,
            "answer_audit_id": message.audit_id,
            "message_id": message.id,
        },
    )
    runtime.history().set_feedback(principal.user_id, message.id, rating)
    return audit_id


def render_feedback(principal: Principal, message: StoredMessage) -> None:
    if message.feedback is not None:
        st.caption(f"You rated this answer thumbs {RATINGS[message.feedback]}. Thank you.")
        return
    choice = st.feedback("thumbs", key=f"fb_{message.id}")
    if choice is None:
        return
    rating = 1 if choice == 1 else -1
    with st.form(f"fb_form_{message.id}", border=False):
        comment = st.text_input(
            "Comment (optional)",
            key=f"fb_comment_{message.id}",
            placeholder="What was good or wrong about this answer?",
        )
        if st.form_submit_button("Send feedback"):
            record_feedback(principal, message, rating, comment)
            st.toast("Thank you for your feedback.")
            st.rerun()
