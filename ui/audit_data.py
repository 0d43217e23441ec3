"""Reading the audit log for the compliance pages: filters and the report aggregates.

The audit log (policies.audit) filters by time, event type and user in SQL; the decision and
document filters, and the aggregates, work on the parsed records here. Documents appear in the
log as ``doc_id`` s; their paths come from the ingest state.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.settings import Settings
from policies.audit import AuditLog

REQUEST_EVENTS = ("ask", "refusal")


@dataclass(frozen=True)
class AuditFilter:
    user_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_type: str | None = None
    decision: str | None = None  # "allowed" | "refused"
    doc_ids: frozenset[str] | None = None  # None: no document filter


def refused(record: dict[str, Any]) -> bool:
    if record.get("event_type") == "refusal":
        return True
    return any(not d.get("allowed", True) for d in record.get("decisions") or [])


def record_doc_ids(record: dict[str, Any]) -> set[str]:
    return {str(r["doc_id"]) for r in record.get("retrieved") or [] if isinstance(r, dict)}


def matches(record: dict[str, Any], flt: AuditFilter) -> bool:
    if flt.decision == "refused" and not refused(record):
        return False
    if flt.decision == "allowed" and refused(record):
        return False
    return not (flt.doc_ids is not None and not record_doc_ids(record) & flt.doc_ids)


def search(log: AuditLog, flt: AuditFilter, limit: int = 500) -> list[dict[str, Any]]:
    """Newest first, at most ``limit`` records."""
    found = [
        r
        for r in log.iter_records(
            since=flt.since,
            until=flt.until,
            event_type=flt.event_type,
            user_id=flt.user_id,
        )
        if matches(r, flt)
    ]
    return found[::-1][:limit]


def reason_code(record: dict[str, Any]) -> str | None:
    details = record.get("details") or {}
    code = details.get("reason_code")
    if code:
        return str(code)
    for d in record.get("decisions") or []:
        if not d.get("allowed", True):
            return str(d.get("reason_code"))
    return None


# Documents ------------------------------------------------------------------------------------
def doc_ids_matching(settings: Settings, text: str) -> frozenset[str]:
    """Ids of the synced files whose path contains ``text`` (asked of ingest)."""
    from ingest.sync.lookup import doc_ids_by_path

    return doc_ids_by_path(settings, text)


def doc_paths(settings: Settings, doc_ids: Iterable[str]) -> dict[str, str]:
    """``doc_id -> "source/path"`` for the ids the ingest state knows (asked of ingest)."""
    from ingest.sync.lookup import doc_paths as lookup_paths

    return lookup_paths(settings, doc_ids)


# Reports --------------------------------------------------------------------------------------
@dataclass
class Reports:
    requests_per_day: dict[str, int]
    refusals_by_reason: dict[str, int]
    cited_docs: dict[str, int]  # doc_id -> citations
    active_users_per_month: dict[str, int]


def build_reports(records: Iterable[dict[str, Any]]) -> Reports:
    per_day: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    cited: Counter[str] = Counter()
    users: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.get("event_type") not in REQUEST_EVENTS:
            continue
        ts = str(r.get("ts") or "")
        per_day[ts[:10]] += 1
        if r.get("user_pseudonym"):
            users[ts[:7]].add(str(r["user_pseudonym"]))
        if refused(r):
            refusals[reason_code(r) or "unknown"] += 1
            continue
        chunk_doc = {
            str(x.get("chunk_id")): str(x.get("doc_id"))
            for x in r.get("retrieved") or []
            if isinstance(x, dict)
        }
        cited_chunks = (r.get("details") or {}).get("cited") or []
        for doc in {chunk_doc[c] for c in cited_chunks if c in chunk_doc}:
            cited[doc] += 1
    return Reports(
        requests_per_day=dict(sorted(per_day.items())),
        refusals_by_reason=dict(refusals.most_common()),
        cited_docs=dict(cited.most_common()),
        active_users_per_month={m: len(u) for m, u in sorted(users.items())},
    )
