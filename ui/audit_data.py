"""Reading the audit log for the compliance pages: filters and the report aggregates.

The audit log (policies.audit) filters by time, event type and user in SQL; the decision and
document filters, and the aggregates, work on the parsed records here. Documents appear in the
log as ``doc_id`` s; their paths come from the ingest state.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core.settings import Settings
from policies.audit import AuditLog

REQUEST_EVENTS = ("ask", "refusal")
_BATCH = 2000


@dataclass(frozen=True)
class AuditFilter:
    user_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_type: str | None = None
    decision: str | None = None  # "allowed" | "refused"
    doc_ids: frozenset[str] | None = None  # None: no document filter


def iter_records(
    log: AuditLog,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    user_id: str | None = None,
) -> Iterator[dict[str, Any]]:
    """All matching records, oldest first, in batches."""
    after = 0
    while True:
        batch = log.records(
            since=since,
            until=until,
            event_type=event_type,
            user_id=user_id,
            after_id=after,
            limit=_BATCH,
        )
        if not batch:
            return
        yield from batch
        after = batch[-1]["id"]


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
        for r in iter_records(
            log,
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
    """Ids of the synced files whose path contains ``text`` (case-insensitive)."""
    from ingest.sync.state import FileRow, open_state

    engine = open_state(settings.db_url)
    needle = f"%{text.strip().lower()}%"
    with engine.connect() as conn:
        rows = conn.execute(select(FileRow.doc_id).where(FileRow.rel_path.ilike(needle))).all()
    return frozenset(str(r[0]) for r in rows)


def doc_paths(settings: Settings, doc_ids: Iterable[str]) -> dict[str, str]:
    """``doc_id -> "source/path"`` for the ids the ingest state knows."""
    from ingest.sync.state import FileRow, SourceRow, open_state

    ids = list(set(doc_ids))
    if not ids:
        return {}
    engine = open_state(settings.db_url)
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(FileRow.doc_id, FileRow.rel_path, SourceRow.name)
                .join(SourceRow, SourceRow.id == FileRow.source_id)
                .where(FileRow.doc_id.in_(ids[start : start + 500]))
            ).all()
            out.update({str(d): f"{s}/{p}" for d, p, s in rows})
    return out


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
