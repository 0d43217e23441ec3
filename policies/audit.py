"""The tamper-evident audit log: an append-only repository over a signed hash chain.

There is no update or delete API; the only deletion is the retention purge
(:mod:`policies.audit_retention`), which first anchors the remaining chain in a signed
checkpoint. Appends serialize on the single ``audit_head`` row (PostgreSQL: ``SELECT ... FOR
UPDATE``; SQLite: ``BEGIN IMMEDIATE``), so concurrent writers in any number of threads or
processes form one linear chain.

Every record is signed (ed25519, ``policy.signing_key_file``) over its position and hash, so
someone who can write the database but does not hold the key cannot edit, insert or re-chain
records; after the commit the record's signed anchor also goes to the external anchor stores
(:mod:`policies.audit_anchors`), so deleting the newest records, or all of them, is detected
too. :meth:`AuditLog.verify` checks the chain, the signatures and the external anchors.

Users appear only as pseudonyms: ``HMAC(key, per-user salt + user id)`` with the key in a file
outside the database and the salt in ``audit_user_keys``. Deleting a user's salt row
(:meth:`AuditLog.forget_user`) is the erasure: their records stay verifiable but can no longer be
linked to them. Questions and answers can be stored PII-masked, with a keyed HMAC of the
original text.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, insert, select, update

from core.errors import AuditError, AuditUsageError
from policies.audit_anchors import AnchorLine, Anchors
from policies.audit_chain import (
    VerifyResult,
    canonical_json,
    chain_hash,
    format_ts,
    record_dict,
    to_utc,
)
from policies.audit_checkpoint import (
    CHECKPOINT,
    Signed,
    TrustedKeys,
    anchor_body,
    body_payload,
    checkpoint_valid,
)
from policies.audit_verify import anchor_sources, check_anchors, verify_log
from policies.decision import Decision
from policies.identity import Principal
from policies.keys import HmacKey, key_id, public_pem, sign
from policies.pii import PiiMasker
from policies.tables import AuditCheckpoint, AuditHead, AuditRecordRow, UserKey

EVENT_TYPES = frozenset(
    {
        "ask",
        "refusal",
        "retrieve",
        "licence_acceptance",
        "sync_run",
        "admin_change",
        "feedback",
        "login",
    }
)
log = logging.getLogger("enclave.audit")
_BATCH = 2000
# Prebuilt statements with bound parameters: compiled once, cached by SQLAlchemy.
_RECORDS = cast(Table, AuditRecordRow.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_CHECKPOINTS = cast(Table, AuditCheckpoint.__table__)
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


def _admin_values(policy_version: str | None, details: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of an ``admin_change`` record the log writes about itself."""
    empty = canonical_json([])
    return {
        "event_type": "admin_change",
        "groups": empty,
        "question": None,
        "question_hmac": None,
        "retrieved": empty,
        "model_name": None,
        "model_sha256": None,
        "policy_version": policy_version,
        "decisions": empty,
        "answer": None,
        "answer_hmac": None,
        "latency_ms": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "details": canonical_json(dict(details)),
    }


def begin_locked(conn: Connection) -> AuditHead:
    """Start the serialized section: lock the chain head and return it."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        row = conn.execute(select(AuditHead).where(AuditHead.id == 1)).one()
    else:
        row = conn.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    return AuditHead(id=row.id, last_id=row.last_id, last_hash=row.last_hash)


class AuditLog:
    """``signer``: the key every appended record is signed with (None: this instance can read
    and verify, not append). ``trusted_public_keys``: the PEM public keys verification accepts
    (the signer's own is added). ``anchors``: the external anchor stores."""

    def __init__(
        self,
        engine: Engine,
        hmac_key: HmacKey,
        *,
        signer: Ed25519PrivateKey | None = None,
        masker: PiiMasker | None = None,
        trusted_public_keys: Sequence[str] = (),
        anchors: Anchors | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self.key = hmac_key
        self.masker = masker
        self.signer = signer
        self.signer_id = key_id(signer) if signer is not None else None
        pems = list(trusted_public_keys)
        if signer is not None and public_pem(signer) not in pems:
            pems.append(public_pem(signer))
        self.trusted_public_keys = pems
        self.trusted = TrustedKeys(pems)
        self.anchors = anchors or Anchors()

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
        return self._append(values, uid)

    def _append(
        self,
        values: dict[str, Any],
        uid: str | None,
        only_if: Callable[[Connection, AuditHead], bool] | None = None,
    ) -> int:
        """Insert one signed record at the head (``only_if`` decides under the lock)."""
        if self.signer is None:
            raise AuditError("this audit log has no signing key: it can verify, not append")
        with self.engine.connect() as conn:
            try:
                head = begin_locked(conn)
                if only_if is not None and not only_if(conn, head):
                    conn.rollback()
                    return 0
                values["user_pseudonym"] = self._pseudonym(conn, uid, True) if uid else None
                row = AuditRecordRow(
                    id=head.last_id + 1, ts=self.clock(), prev_hash=head.last_hash, **values
                )
                row.hash = chain_hash(head.last_hash, record_dict(row))
                body = anchor_body(row.id, row.hash, format_ts(row.ts))
                signature = sign(self.signer, body_payload(body))
                conn.execute(
                    _INSERT_RECORD,
                    dict(
                        values,
                        id=row.id,
                        ts=row.ts,
                        prev_hash=row.prev_hash,
                        hash=row.hash,
                        key_id=self.signer_id,
                        signature=signature,
                    ),
                )
                conn.execute(_UPDATE_HEAD, {"new_id": row.id, "new_hash": row.hash})
                conn.commit()
            except Exception:
                conn.rollback()
                raise
        if self.anchors.due(row.id):
            assert self.signer_id is not None
            self.anchors.publish([Signed(CHECKPOINT, body, self.signer_id, signature)])
        return row.id

    def upgrade_legacy_chain(self, policy_version: str | None = None) -> int:
        """Re-anchor a chain written before records were signed (an upgraded installation):
        append one signed ``admin_change`` record (``audit.chain_upgrade``) whose signature pins
        every unsigned record before it, and ship its anchor outside the database. Done once,
        when the newest record is unsigned; returns the new record's id (0: nothing to do).
        The unsigned records are checked first and the result is recorded, so a break that
        happened before the upgrade stays visible (verification keeps reporting it)."""
        head_id, _ = self.head()
        if head_id == 0 or self._head_signed(head_id):
            return 0
        legacy = self.verify(with_anchors=False)
        intact = legacy.ok or legacy.reason_code == "audit.head_unsigned"  # what this fixes
        details: dict[str, Any] = {
            "action": "audit.chain_upgrade",
            "unsigned_records": head_id,
            "legacy_chain_intact": intact,
        }
        if not intact:
            details["legacy_problem"] = {
                "first_bad_id": legacy.first_bad_id,
                "reason_code": legacy.reason_code,
            }
        values = _admin_values(policy_version, details)

        def still_unsigned(conn: Connection, head: AuditHead) -> bool:
            sig = conn.execute(
                select(AuditRecordRow.signature).where(AuditRecordRow.id == head.last_id)
            ).scalar()
            return head.last_id > 0 and sig is None

        rid = self._append(values, "system:audit-upgrade", only_if=still_unsigned)
        if rid:
            log.warning(
                "audit log upgraded to signed records: %d unsigned records are now anchored by "
                "signed record %d (legacy chain intact: %s)",
                head_id,
                rid,
                intact,
            )
        return rid

    def _head_signed(self, head_id: int) -> bool:
        with self.engine.connect() as conn:
            sig = conn.execute(
                select(AuditRecordRow.signature).where(AuditRecordRow.id == head_id)
            ).scalar()
            if sig is not None:
                return True
            cps = conn.execute(
                select(func.count())
                .select_from(_CHECKPOINTS)
                .where(_CHECKPOINTS.c.head_id == head_id)
            ).scalar_one()
        return bool(cps)

    # Read -------------------------------------------------------------------------------
    def iter_records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        event_type: str | None = None,
        user_id: str | None = None,
        batch: int = 2000,
    ) -> Iterator[dict[str, Any]]:
        """Every matching record, oldest first, read in batches of ``batch`` (exports and
        reports over a log of any length)."""
        after = 0
        while True:
            found = self.records(
                since=since,
                until=until,
                event_type=event_type,
                user_id=user_id,
                after_id=after,
                limit=batch,
            )
            if not found:
                return
            yield from found
            after = found[-1]["id"]

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
        return [
            dict(record_dict(r), hash=r.hash, key_id=r.key_id, signature=r.signature)  # type: ignore[arg-type]
            for r in rows
        ]

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
        return checkpoint_valid(cp, self.trusted)

    def signature_ok(self, row: AuditRecordRow) -> bool | None:
        """True: the record carries a valid signature of a trusted key; False: an invalid one;
        None: none (a record from before signatures)."""
        if row.signature is None:
            return None
        body = anchor_body(row.id, row.hash, format_ts(row.ts))
        return self.trusted.valid(body, row.key_id, row.signature)

    def anchor_sources(
        self, extra: Sequence[tuple[str, Iterable[AnchorLine]]] = ()
    ) -> list[tuple[str, Iterable[AnchorLine]]]:
        """Every readable anchor store, plus ``extra`` (e.g. files a syslog collector wrote)."""
        return anchor_sources(self, extra)

    def verify(
        self,
        *,
        with_anchors: bool = True,
        extra_anchors: Sequence[tuple[str, Iterable[AnchorLine]]] = (),
    ) -> VerifyResult:
        """Walk the chain and check every signature, then the external anchors; report the first
        record where it breaks (:mod:`policies.audit_verify`)."""
        return verify_log(self, with_anchors=with_anchors, extra_anchors=extra_anchors)

    def acknowledge_loss(
        self,
        actor: str,
        reason: str,
        policy_version: str | None = None,
        extra_anchors: Sequence[tuple[str, Iterable[AnchorLine]]] = (),
    ) -> tuple[int, int, int]:
        """After restoring an older backup: the external anchors name records the database no
        longer has, and ``verify`` reports them (``audit.truncated``) until someone declares
        them lost. This appends that declaration as a signed ``admin_change`` record
        (``audit.loss_acknowledged``: the lost range, who, why); returns (first lost id, last
        lost id, the declaration's id). The records stay lost and every later verification
        names the loss; an attacker with the key could do the same, which is why the
        declaration itself is anchored and never hides the fact."""
        if not reason.strip():
            raise AuditUsageError("give the reason for the loss (--reason)")
        result = self.verify(extra_anchors=extra_anchors)
        if result.ok or result.reason_code != "audit.truncated":
            raise AuditUsageError(
                "nothing to acknowledge: verification does not report lost records "
                f"({result.reason_code}: {result.message})",
                code="audit.bad_request",
            )
        latest = check_anchors(
            self.engine,
            self.anchor_sources(extra_anchors),
            self.trusted,
            head_id=1 << 62,
            first_id=None,
        )
        first, last = result.head_id + 1, int(latest.latest_id or result.head_id)
        details = {
            "action": "audit.loss_acknowledged",
            "lost_from": first,
            "lost_through": last,
            "reason": reason.strip()[:2000],
            "actor": actor,
        }
        rid = self._append(_admin_values(policy_version, details), actor)
        return first, last, rid
