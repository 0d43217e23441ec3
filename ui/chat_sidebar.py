"""The conversation list in the sidebar: new, search, dated groups, open, rename, delete."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import streamlit as st

from assistant.history import Conversation
from policies.identity import Principal
from ui import runtime
from ui.render import literal
from ui.titles import date_group

CONV_PARAM = "c"  # the open conversation, in the URL: survives a refresh, can be linked
PENDING_KEY = "chat_pending"


def open_conversation(conversation_id: str | None) -> None:
    if conversation_id:
        st.query_params[CONV_PARAM] = conversation_id
    else:
        st.query_params.pop(CONV_PARAM, None)


def user_tz() -> tzinfo:
    try:
        name = st.context.timezone
        return ZoneInfo(name) if name else UTC
    except Exception:
        return UTC


def render_conversation_sidebar(principal: Principal, current: Conversation | None) -> None:
    store = runtime.history()
    with st.sidebar:
        if st.button("New conversation", icon=":material/add:", key="chat_new"):
            open_conversation(None)
            st.session_state.pop(PENDING_KEY, None)
            st.rerun()
        query = st.text_input(
            "Search conversations",
            key="chat_search",
            placeholder="Search conversations",
            label_visibility="collapsed",
            icon=":material/search:",
        ).strip()
        found = (
            store.search(principal.user_id, query)
            if query
            else store.conversations(principal.user_id)
        )
        if query and not found:
            st.caption("No conversation matches.")
        tz = user_tz()
        today = datetime.now(tz).date()
        heading = None
        for conv in found:
            used = (
                conv.updated_at if conv.updated_at.tzinfo else conv.updated_at.replace(tzinfo=UTC)
            )
            group = date_group(used.astimezone(tz), today)
            if group != heading:
                st.caption(group)
                heading = group
            selected = current is not None and conv.id == current.id
            started = conv.created_at.astimezone(tz) if conv.created_at.tzinfo else conv.created_at
            if st.button(
                literal(conv.title),
                key=f"chat_open_{conv.id}",
                type="primary" if selected else "tertiary",
                width="stretch",
                help=f"Started {started:%Y-%m-%d %H:%M}, "
                f"last used {used.astimezone(tz):%Y-%m-%d %H:%M}",
            ):
                open_conversation(conv.id)
                st.session_state.pop(PENDING_KEY, None)
                st.rerun()
        if current is not None:
            _manage(principal, current)


def _manage(principal: Principal, current: Conversation) -> None:
    store = runtime.history()
    st.divider()
    with st.popover("Rename this conversation", icon=":material/edit:", width="stretch"):
        title = st.text_input("New title", value=current.title, key=f"chat_title_{current.id}")
        if st.button("Save title", key="chat_rename", type="primary"):
            try:
                store.rename(principal.user_id, current.id, title)
            except ValueError:
                st.error("A title cannot be empty.")
            else:
                st.toast("Conversation renamed.")
                st.rerun()
    if st.button("Delete this conversation", icon=":material/delete:", key="chat_delete"):
        store.delete(principal.user_id, current.id)
        open_conversation(None)
        st.session_state.pop(PENDING_KEY, None)
        st.toast("Conversation deleted.")
        st.rerun()
