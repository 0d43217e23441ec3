"""Citations under an answer, and the download of a cited file for those who may read it.

Whether a file may be downloaded is decided twice: when the page renders (no button otherwise)
and again when the button is pressed, from the access rules file and the directory as they are
*then* (a rule tightened or a group removed since the answer was given takes effect at once).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import streamlit as st

from core.errors import AccessDeniedError
from core.settings import Settings
from policies.access import AccessRules
from policies.directory import Directory
from policies.identity import Principal
from ui import runtime
from ui.render import neutralize

log = logging.getLogger("enclave.ui")


def current_groups(settings: Settings, principal: Principal) -> frozenset[str]:
    """The user's groups now: re-read from the directory file for local accounts."""
    if settings.ldap.url:
        fresh = runtime.policies().directory.get(principal.user_id)
        return fresh.access_ids if fresh is not None else frozenset()
    if settings.ui.auth == "local" and settings.directory is not None:
        fresh = Directory.load(settings.directory).get(principal.user_id)
        return fresh.access_ids if fresh is not None else frozenset()
    return principal.access_ids


def readable_path(
    settings: Settings, principal: Principal, source: str, rel_path: str
) -> Path | None:
    """The file behind a citation if ``principal`` may read it now, else None (fail closed)."""
    rules = AccessRules.load(settings.access_rules)
    if not rules.allows(source, rel_path, current_groups(settings, principal)):
        return None
    root = source_root(settings, source)
    if root is None:
        return None
    root = root.resolve()
    path = (root / rel_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def source_root(settings: Settings, source: str) -> Path | None:
    from ingest.sync.status import collect_status

    for status in collect_status(settings):
        if status.name == source:
            return Path(status.root)
    return None


def _deferred_read(settings: Settings, principal: Principal, source: str, rel_path: str) -> Any:
    """Runs when the button is pressed (outside the script run: no ``st`` calls here)."""

    def read() -> bytes:
        path = readable_path(settings, principal, source, rel_path)
        if path is None:
            log.warning("download refused: %s %s:%s", principal.user_id, source, rel_path)
            raise AccessDeniedError(f"you may no longer read {rel_path}")
        log.info("download: %s %s:%s", principal.user_id, source, rel_path)
        return path.read_bytes()

    return read


def render_citations(principal: Principal, citations: list[dict[str, Any]], key: str) -> None:
    if not citations:
        return
    settings = runtime.settings()
    st.caption("Sources")
    for i, cite in enumerate(citations):
        path = str(cite.get("path") or "")
        source = str(cite.get("source") or "")
        page = cite.get("page")
        label = f"[{cite.get('n', i + 1)}] {path}" + (f" — page {page}" if page else "")
        with st.expander(neutralize(label)):
            st.markdown(f"**File:** {neutralize(source)} / {neutralize(path)}")
            if cite.get("section"):
                st.markdown(f"**Section:** {neutralize(str(cite['section']))}")
            if page:
                st.markdown(f"**Page:** {page}")
            st.markdown("**Cited passage:**")
            st.text(str(cite.get("snippet") or ""))
            if readable_path(settings, principal, source, path) is not None:
                st.download_button(
                    "Download the file",
                    data=_deferred_read(settings, principal, source, path),
                    file_name=Path(path).name,
                    key=f"dl_{key}_{i}",
                    icon=":material/download:",
                    on_click="ignore",
                )
            else:
                st.caption("The file itself is not available to you for download.")
