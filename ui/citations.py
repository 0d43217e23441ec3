"""Sources under an answer: a chip per cited source, opening the passage it rests on.

Only the sources the answer uses are citations (``Answer.citations``); what retrieval found
but the answer does not use is listed apart as "also retrieved", by name only. Each chip opens
the cited passage — the whole chunk, with the supporting sentence(s) marked — and, for readers
of the file only, "Open at page N" (PDFs, in the browser's viewer at ``#page=N``) and a
download. Whether the user may still read a source is asked of the index each time the page
renders (:func:`ui.cited_files.readable_chunks`), and again when a file is fetched
(:func:`ui.cited_files.open_cited`), so a group removed since the answer was given takes
effect at once, passage included.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import streamlit as st

from policies.identity import Principal
from ui import runtime
from ui.render import literal, passage_html
from ui.webapi import api_path


def chip_label(cite: dict[str, Any]) -> str:
    name = PurePosixPath(str(cite.get("path") or "")).name or "source"
    page = cite.get("page")
    return f"[{cite.get('n')}] {name}" + (f" · p. {page}" if page else "")


def render_sources(
    principal: Principal,
    citations: list[dict[str, Any]],
    also_retrieved: list[dict[str, Any]],
    readable: set[str],
    key: str,
) -> None:
    if citations:
        with st.container(horizontal=True, gap="small", key=f"cites_{key}"):
            for i, cite in enumerate(citations):
                with st.popover(literal(chip_label(cite)), width="content", key=f"chip_{key}_{i}"):
                    _passage(principal, cite, str(cite.get("chunk_id") or "") in readable, key, i)
    names = uncited_files(citations, also_retrieved)
    if names:
        st.caption(
            "Also retrieved, not used in this answer: "
            + literal(", ".join(PurePosixPath(n).name for n in names))
        )


def uncited_files(
    citations: list[dict[str, Any]], also_retrieved: list[dict[str, Any]]
) -> list[str]:
    """The retrieved files no citation comes from. Files, not chunks: another passage of a
    cited file is not "not used in this answer"."""
    cited = {str(c.get("path") or "") for c in citations}
    return sorted({str(s.get("path") or "") for s in also_retrieved} - cited - {""})


def _passage(principal: Principal, cite: dict[str, Any], readable: bool, key: str, i: int) -> None:
    source = str(cite.get("source") or "")
    path = str(cite.get("path") or "")
    where = [f"{source} / {path}"]
    if cite.get("section"):
        where.append(f"section: {cite['section']}")
    if cite.get("page"):
        where.append(f"page {cite['page']}")
    st.caption(literal(" · ".join(where)))
    if not readable:
        st.caption("You can no longer read this source, so its passage is not shown.")
        return
    text = str(cite.get("text") or "")
    highlights = [tuple(h) for h in cite.get("highlights") or []]
    if not text:  # answers stored before full passages were kept: the snippet, all marked
        text = str(cite.get("snippet") or "")
        highlights = [(0, len(text))] if text else []
    st.html(passage_html(text, highlights))
    chunk_id = str(cite.get("chunk_id") or "")
    with st.container(horizontal=True, gap="small"):
        page = cite.get("page")
        if page and path.lower().endswith(".pdf"):
            st.link_button(
                f"Open at page {page}",
                f"{api_path('file')}?chunk={chunk_id}#page={int(page)}",
                icon=":material/open_in_new:",
            )
        st.download_button(
            "Download the file",
            data=_deferred_read(principal, chunk_id),
            file_name=PurePosixPath(path).name or "document",
            key=f"dl_{key}_{i}",
            icon=":material/download:",
            on_click="ignore",
        )


def _deferred_read(principal: Principal, chunk_id: str) -> Callable[[], bytes]:
    """Runs when the button is pressed (outside the script run: no ``st`` calls here): the
    principal is looked up again, then every check of :func:`ui.cited_files.open_cited`."""
    resources = runtime.for_key()
    oidc = resources.settings.ui.auth == "oidc"

    def read() -> bytes:
        from core.errors import AccessDeniedError
        from ui.cited_files import NOT_AVAILABLE, open_cited

        now = resources.policies().current_principal(
            principal.user_id, claimed=principal if oidc else None
        )
        if now is None:
            raise AccessDeniedError(NOT_AVAILABLE)
        return open_cited(resources, now, chunk_id).data

    return read
