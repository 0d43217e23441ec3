"""The empty chat: what this user can search, and a few questions to start with.

Both come from documents the user may read, and nothing else: the per-source file counts are
asked of ingest for the user's groups (:func:`ingest.sync.lookup.readable_sources`), and the
starter questions are made from the titles and section headings of a few recently indexed
files, read from the index with the same group test the search applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from policies.identity import Principal
from ui import runtime
from ui.render import literal

MAX_STARTERS = 4
_SEP = " > "


@dataclass(frozen=True)
class Overview:
    sources: list[dict[str, Any]]  # name, files, last_sync (ISO or None)
    starters: list[str]


def render_empty(principal: Principal) -> str | None:
    """Show the overview; returns a starter question the user clicked, else None."""
    overview = _overview(runtime.config_key(), tuple(sorted(principal.groups)))
    if not overview.sources:
        st.info(
            "You cannot search any documents yet: no synced document is shared with your "
            "groups. Ask your administrator for access.",
            icon=":material/info:",
        )
        return None
    st.markdown("##### What you can search")
    st.dataframe(
        [
            {
                "source": s["name"],
                "files you can read": s["files"],
                "last synced": _when(s["last_sync"]),
            }
            for s in overview.sources
        ],
        hide_index=True,
        key="chat_sources",
    )
    if not overview.starters:
        return None
    st.markdown("##### Try asking")
    chosen = None
    with st.container(horizontal=True, gap="small"):
        for i, question in enumerate(overview.starters):
            if st.button(literal(question), key=f"chat_starter_{i}", icon=":material/lightbulb:"):
                chosen = question
    return chosen


def _when(iso: str | None) -> str:
    if not iso:
        return "never"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@st.cache_data(ttl=60, show_spinner=False)
def _overview(key: runtime.ConfigKey, groups: tuple[str, ...]) -> Overview:
    from ingest.sync.lookup import readable_sources

    resources = runtime.for_key(key)
    found = readable_sources(resources.settings, frozenset(groups))
    sources = [
        {
            "name": s.name,
            "files": s.files,
            "last_sync": s.last_sync.isoformat() if s.last_sync else None,
        }
        for s in found
    ]
    doc_ids = _round_robin([list(s.recent_doc_ids) for s in found], MAX_STARTERS * 2)
    return Overview(sources, starter_questions(resources, frozenset(groups), doc_ids))


def _round_robin(lists: list[list[str]], limit: int) -> list[str]:
    out: list[str] = []
    while any(lists) and len(out) < limit:
        for items in lists:
            if items and len(out) < limit:
                out.append(items.pop(0))
    return out


def starter_questions(
    resources: runtime.Resources, groups: frozenset[str], doc_ids: list[str]
) -> list[str]:
    """Up to four questions about readable documents, from their titles and headings."""
    from ingest.index.common import readable_by
    from ingest.model import make_point_id

    if not doc_ids or not groups:
        return []
    ids = [make_point_id(d, i) for d in doc_ids for i in (1, 2)]
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for point in resources.index().get_points(ids):
        if readable_by(point.payload, groups):
            by_doc.setdefault(str(point.payload.get("doc_id")), []).append(point.payload)
    out: list[str] = []
    for doc_id in doc_ids:
        payloads = sorted(by_doc.get(doc_id, []), key=lambda p: int(p.get("chunk_index") or 0))
        question = next((q for q in map(_question, payloads) if q), None)
        if question and question not in out:
            out.append(question)
        if len(out) == MAX_STARTERS:
            break
    return out


def _question(payload: dict[str, Any]) -> str | None:
    section = str(payload.get("section") or "").strip()
    title = str(payload.get("title") or "").strip()
    parts = [p.strip() for p in section.split(_SEP) if p.strip()]
    if not parts:
        return None
    topic = parts[-1]
    doc = parts[0] if len(parts) > 1 else title
    if not doc or topic.casefold() == doc.casefold() or len(topic) > 60 or len(doc) > 60:
        return None
    if len(topic) > 1 and topic[1].islower():
        topic = topic[0].lower() + topic[1:]
    return f"What does “{doc}” say about {topic}?"
