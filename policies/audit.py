"""The tamper-evident audit log: an append-only repository over a hash chain.

There is no update or delete API; the only deletion is the retention purge
(:mod:`policies.audit_retention`), which first anchors the remaining chain in a signed
checkpoint. Appends serialize on the single ``audit_head`` row (PostgreSQL: ``SELECT ... FOR
UPDATE``; SQLite: ``BEGIN IMMEDIATE``), so concurrent writers in any number of threads or
processes form one linear chain.

Users appear only as pseudonyms: ``HMAC(key, per-user salt + user id)`` with the key in a file
outside the database and the salt in ``audit_user_keys``. Deleting a user's salt row
(:meth:`AuditLog.forget_user`) is the erasure: their records stay verifiable but can no longer be
linked to them. Questions and answers can be stored PII-masked, with a keyed HMAC of the
original text.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update

from core.errors import AuditError
from policies.audit_chain import (
    GENESIS,
    Anchor,
    ChainWalker,
    VerifyResult,
    canonical_json,
    chain_hash,
    record_dict,
    to_utc,
)
from policies.audit_checkpoint import checkpoint_valid
from policies.decision import Decision
from policies.identity import Principal
from policies.keys import HmacKey
from policies.pii import PiiMasker
from policies.tables import AuditCheckpoint, AuditHead, AuditRecordRow, UserKey

EVENT_TYPES = frozenset(
    {"ask", "refusal", "licence_acceptance", "sync_run", "admin_change", "feedback", "login"}
)
_BATCH = 2000
# Prebuilt statements with bound parameters: compiled once, cached by SQLAlchemy.
_RECORDS = cast(Table, AuditRecordRow.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_KEYS = cast(Table, UserKey.__table__)
_INSERT_RECORD = insert(_RECORDS)
_UPDATE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
_SELECT_SALT = select(_KEYS.c.salt).where(_KEYS.c.lookup == bindparam("lookup"))


@dataclass(frozen=True)
class Retrieved:
    doc_id: str
    chunk_id: str


def _retrieved_json(items: Sequence[Retrieved | Mapping[str, Any] | tuple[str, str]]) -> list[Any]:
    out = []
    for item in items:
        if isinstance(item, Retrieved):
            out.append({"doc_id": item.doc_id, "chunk_id": item.chunk_id})
        elif isinstance(item, tuple):
            out.append({"doc_id": str(item[0]), "chunk_id": str(item[1])})
        else:
            out.append({"doc_id": str(item["doc_id"]), "chunk_id": str(item["chunk_id"])})
    return out


def begin_locked(conn: Connection) -> AuditHead:
    """Start the serialized section: lock the chain head and return it."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        row = conn.execute(select(AuditHead).where(AuditHead.id == 1)).one()
    else:
        row = conn.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    return AuditHead(id=row.id, last_id=row.last_id, last_hash=row.last_hash)


class AuditLog:
    def __init__(
        self,
        engine: Engine,
        hmac_key: HmacKey,
        *,
        masker: PiiMasker | None = None,
        trusted_public_keys: Sequence[str] = (),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self.key = hmac_key
        self.masker = masker
        self.trusted_public_keys = list(trusted_public_keys)

    # Pseudonyms -------------------------------------------------------------------------
    def _lookup(self, user_id: str) -> str:
        return self.key.digest("user-lookup", user_id)

    def pseudonym(self, user_id: str, *, create: bool = True) -> str | None:
        """The user's stable pseudonym; ``None`` when erased (or unknown and ``create=False``)."""
        with self.engine.begin() as conn:
            return self._pseudonym(conn, user_id, create)

    def _pseudonym(self, conn: Connection, user_id: str, create: bool) -> str | None:
        lookup = self._lookup(user_id)
        salt = conn.execute(_SELECT_SALT, {"lookup": lookup}).scalar()
        if salt is None:
            if not create:
                return None
            values = {
                "lookup": lookup,
                "salt": secrets.token_hex(16),
                "created_at": datetime.now(UTC),
            }
            if conn.dialect.name == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import (  # type: ignore[assignment]
                    insert as dialect_insert,
                )
            conn.execute(dialect_insert(UserKey).values(**values).on_conflict_do_nothing())
            salt = conn.execute(_SELECT_SALT, {"lookup": lookup}).scalar()
        return self.key.digest("pseudonym", f"{salt}:{user_id}")[:32]

    def forget_user(self, user_id: str) -> bool:
        """Erase the link between ``user_id`` and their pseudonym; True if one existed."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(UserKey).where(UserKey.lookup == self._lookup(user_id)))
        return bool(res.rowcount)

    # Append -----------------------------------------------------------------------------
    def _text(self, text: str | None) -> tuple[str | None, str | None]:
        if text is None:
            return None, None
        keyed = self.key.digest("text", text)
        return (self.masker.mask(text) if self.masker else text), keyed

    def append(
        self,
        event_type: str,
        *,
        principal: Principal | None = None,
        user_id: str | None = None,
        groups: Sequence[str] | None = None,
        question: str | None = None,
        retrieved: Sequence[Retrieved | Mapping[str, Any] | tuple[str, str]] = (),
        model_name: str | None = None,
        model_sha256: str | None = None,
        policy_version: str | None = None,
        decisions: Sequence[Decision | Mapping[str, Any]] = (),
        answer: str | None = None,
        latency_ms: float | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one record and return its id."""
        if event_type not in EVENT_TYPES:
            raise AuditError(
                f"unknown audit event type {event_type!r}; known: {sorted(EVENT_TYPES)}",
                code="audit.bad_event",
            )
        uid = principal.user_id if principal is not None else user_id
        grp = sorted(principal.groups) if principal is not None else sorted(groups or [])
        q, q_hmac = self._text(question)
        a, a_hmac = self._text(answer)
        values: dict[str, Any] = {
            "event_type": event_type,
            "groups": canonical_json(grp),
            "question": q,
            "question_hmac": q_hmac,
            "retrieved": canonical_json(_retrieved_json(retrieved)),
            "model_name": model_name,
            "model_sha256": model_sha256,
            "policy_version": policy_version,
            "decisions": canonical_json(
                [d.to_dict() if isinstance(d, Decision) else dict(d) for d in decisions]
            ),
            "answer": a,
            "answer_hmac": a_hmac,
            "latency_ms": round(latency_ms) if latency_ms is not None else None,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "details": canonical_json(dict(details or {})),
        }
        with self.engine.connect() as conn:
            try:
                head = begin_locked(conn)
                values["user_pseudonym"] = self._pseudonym(conn, uid, True) if uid else None
                row = AuditRecordRow(
                    id=head.last_id + 1, ts=self.clock(), prev_hash=head.last_hash, **values
                )
                row.hash = chain_hash(head.last_hash, record_dict(row))
                conn.execute(
                    _INSERT_RECORD,
                    dict(values, id=row.id, ts=row.ts, prev_hash=row.prev_hash, hash=row.hash),
                )
                conn.execute(_UPDATE_HEAD, {"new_id": row.id, "new_hash": row.hash})
                conn.commit()
            except Exception:
                conn.rollback()
                raise
        return row.id

    # Read -------------------------------------------------------------------------------
    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        event_type: str | None = None,
        user_id: str | None = None,
        after_id: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Records as dicts (``hash`` included), filtered; ``user_id`` maps via the pseudonym."""
        stmt = select(AuditRecordRow)
        if newest_first:
            stmt = stmt.order_by(AuditRecordRow.id.desc())
        else:
            stmt = stmt.where(AuditRecordRow.id > after_id).order_by(AuditRecordRow.id)
        if since is not None:
            stmt = stmt.where(AuditRecordRow.ts >= to_utc(since))
        if until is not None:
            stmt = stmt.where(AuditRecordRow.ts < to_utc(until))
        if event_type is not None:
            stmt = stmt.where(AuditRecordRow.event_type == event_type)
        if user_id is not None:
            pseudonym = self.pseudonym(user_id, create=False)
            if pseudonym is None:
                return []
            stmt = stmt.where(AuditRecordRow.user_pseudonym == pseudonym)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [dict(record_dict(r), hash=r.hash) for r in rows]  # type: ignore[arg-type]

    def iter_rows(self, after_id: int = 0) -> Iterator[AuditRecordRow]:
        last = after_id
        while True:
            with self.engine.connect() as conn:
                batch = conn.execute(
                    select(AuditRecordRow)
                    .where(AuditRecordRow.id > last)
                    .order_by(AuditRecordRow.id)
                    .limit(_BATCH)
                ).all()
            if not batch:
                return
            yield from batch  # type: ignore[misc]
            last = batch[-1].id

    def head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            row = conn.execute(select(AuditHead).where(AuditHead.id == 1)).one()
        return int(row.last_id), str(row.last_hash)

    def count(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one())

    # Verify -----------------------------------------------------------------------------
    def checkpoints(self) -> list[AuditCheckpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).all()
        return [AuditCheckpoint(**r._mapping) for r in rows]

    def checkpoint_valid(self, cp: AuditCheckpoint) -> bool:
        return checkpoint_valid(cp, self.trusted_public_keys)

    def verify(self) -> VerifyResult:
        """Walk the chain; report the first record where it breaks."""
        head_id, head_hash = self.head()
        cps = self.checkpoints()
        for cp in cps:
            if not self.checkpoint_valid(cp):
                return VerifyResult(
                    False,
                    0,
                    head_id,
                    cp.head_id,
                    "audit.checkpoint_invalid",
                    f"checkpoint {cp.id} (record {cp.head_id}) has a bad or untrusted signature",
                )
        with self.engine.connect() as conn:
            first = conn.execute(select(AuditRecordRow.id).order_by(AuditRecordRow.id).limit(1))
            first_id = first.scalar()
        anchor = GENESIS
        if (first_id is None and head_id > 0) or (first_id is not None and first_id > 1):
            start = (first_id - 1) if first_id is not None else head_id
            found = [cp for cp in cps if cp.head_id == start]
            if not found:
                bad = first_id if first_id is not None else 1
                return VerifyResult(
                    False,
                    0,
                    head_id,
                    bad,
                    "audit.record_missing",
                    f"records before {bad} are missing and no signed checkpoint "
                    "anchors the remaining chain",
                )
            anchor = Anchor(start, found[-1].head_hash, found[-1].id)
        at: dict[int, list[tuple[int, str]]] = {}
        for cp in cps:
            at.setdefault(cp.head_id, []).append((cp.id, cp.head_hash))
        walker = ChainWalker(anchor, at)
        walker.feed(self.iter_rows(anchor.after_id))
        if walker.failure is None:
            last_id = walker.expected_id - 1
            if head_id > last_id:
                walker.failure = (
                    last_id + 1,
                    "audit.record_missing",
                    f"records {last_id + 1}..{head_id} are missing (the log was truncated)",
                )
            elif head_id < last_id:
                walker.failure = (
                    head_id + 1,
                    "audit.record_unregistered",
                    f"record {head_id + 1} was not appended through the log",
                )
            elif head_hash != walker.prev_hash:
                walker.failure = (
                    head_id,
                    "audit.head_mismatch",
                    f"the chain head does not match record {head_id}",
                )
            else:
                beyond = [cp for cp in cps if cp.head_id > last_id]
                if beyond:
                    walker.failure = (
                        last_id + 1,
                        "audit.record_missing",
                        f"checkpoint {beyond[0].id} covers record "
                        f"{beyond[0].head_id}, which is missing",
                    )
        if walker.failure is not None:
            bad_id, code, message = walker.failure
            return VerifyResult(
                False, walker.checked, head_id, bad_id, code, message, anchor.checkpoint_id
            )
        return VerifyResult(
            True,
            walker.checked,
            head_id,
            message=f"audit chain intact: {walker.checked} records verified",
            anchor_checkpoint_id=anchor.checkpoint_id,
        )
