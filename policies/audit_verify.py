"""Verification of the audit log: the chain walk, the signatures, the external anchors.

:func:`verify_log` (what ``AuditLog.verify`` and ``policies audit verify`` run):

1. every stored checkpoint must carry a valid signature of a trusted key;
2. the records are walked in id order from genesis, or from the signed checkpoint that anchors
   the oldest record a retention purge left (:class:`~policies.audit_chain.ChainWalker`): each
   record's id, link, hash and signature; an unsigned record after a signed one is an alarm;
3. the head must match the last record, and some signature must cover it;
4. every anchor of every readable external store (:mod:`policies.audit_anchors`), and of files
   given with ``--anchors``, is checked against the records (:func:`check_anchors`): an anchor
   beyond the head means records were removed, a different hash at an anchored id means the
   chain was rewritten, a bad signature means someone wrote into the store. Ranges declared
   lost after a restore (``policies audit acknowledge-loss``) are skipped and named.

The first break is reported with the id of the first bad record and a stable reason code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from policies.audit_anchors import AnchorLine
from policies.audit_chain import GENESIS, Anchor, ChainWalker, VerifyResult, format_ts
from policies.audit_checkpoint import CHECKPOINT, TrustedKeys
from policies.tables import AuditCheckpoint, AuditRecordRow

if TYPE_CHECKING:
    from policies.audit import AuditLog

_BATCH = 2000


@dataclass(frozen=True)
class DeclaredLoss:
    """Records ``first``..``last`` were lost (a restore from an older backup) and an admin said
    so in signed record ``record_id`` at ``time`` (``policies audit acknowledge-loss``):
    anchors of those ids written before ``time`` belong to the lost records and are skipped.
    The declaration stays in the chain, so every later verification names the loss."""

    first: int
    last: int
    record_id: int
    time: str

    def covers(self, head_id: int, time: object) -> bool:
        return self.first <= head_id <= self.last and str(time) < self.time


@dataclass
class AnchorReport:
    """What the external anchors say about the chain (see :func:`check_anchors`)."""

    checked: int = 0
    latest_id: int | None = None
    latest_time: str | None = None
    failure: tuple[int | None, str, str] | None = None
    sources: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _watch_losses(
    rows: Iterable[AuditRecordRow], found: list[DeclaredLoss]
) -> Iterator[AuditRecordRow]:
    """Pass ``rows`` through, collecting loss declarations (trusted only if the walk that
    consumes them finds every signature valid)."""
    for row in rows:
        if row.event_type == "admin_change" and "audit.loss_acknowledged" in row.details:
            d = json.loads(row.details)
            if d.get("action") == "audit.loss_acknowledged":
                found.append(
                    DeclaredLoss(
                        int(d["lost_from"]), int(d["lost_through"]), row.id, format_ts(row.ts)
                    )
                )
        yield row


def anchor_sources(
    log: AuditLog, extra: Sequence[tuple[str, Iterable[AnchorLine]]] = ()
) -> list[tuple[str, Iterable[AnchorLine]]]:
    """Every readable anchor store, plus ``extra`` (e.g. files a syslog collector wrote)."""
    out: list[tuple[str, Iterable[AnchorLine]]] = []
    for store in log.anchors.readable():
        lines = store.read()
        if lines is not None:
            out.append((store.name, lines))
    return out + list(extra)


def verify_log(
    log: AuditLog,
    *,
    with_anchors: bool = True,
    extra_anchors: Sequence[tuple[str, Iterable[AnchorLine]]] = (),
) -> VerifyResult:
    """Walk the chain and check every signature, then the external anchors; report the first
    record where it breaks (module docstring)."""
    head_id, head_hash = log.head()
    cps = log.checkpoints()
    for cp in cps:
        if not log.checkpoint_valid(cp):
            return VerifyResult(
                False,
                0,
                head_id,
                cp.head_id,
                "audit.checkpoint_invalid",
                f"checkpoint {cp.id} (record {cp.head_id}) has a bad or untrusted signature",
            )
    with log.engine.connect() as conn:
        first = conn.execute(select(AuditRecordRow.id).order_by(AuditRecordRow.id).limit(1))
        first_id = first.scalar()
    anchor = GENESIS
    if (first_id is None and head_id > 0) or (first_id is not None and first_id > 1):
        start = (first_id - 1) if first_id is not None else head_id
        found = [cp for cp in cps if cp.head_id == start]
        if not found:
            bad = first_id if first_id is not None else 1
            return _with_anchors(
                log,
                VerifyResult(
                    False,
                    0,
                    head_id,
                    bad,
                    "audit.record_missing",
                    f"records before {bad} are missing and no signed checkpoint "
                    "anchors the remaining chain",
                ),
                with_anchors,
                extra_anchors,
                first_id,
            )
        anchor = Anchor(start, found[-1].head_hash, found[-1].id)
    at: dict[int, list[tuple[int, str]]] = {}
    for cp in cps:
        at.setdefault(cp.head_id, []).append((cp.id, cp.head_hash))
    walker = ChainWalker(anchor, at, log.signature_ok, head_id)
    losses: list[DeclaredLoss] = []
    walker.feed(_watch_losses(log.iter_rows(anchor.after_id), losses))
    if walker.failure is None:
        walker.failure = _head_problem(walker, head_id, head_hash, cps)
    if walker.failure is not None:
        bad_id, code, message = walker.failure
        return VerifyResult(
            False, walker.checked, head_id, bad_id, code, message, anchor.checkpoint_id
        )
    result = VerifyResult(
        True,
        walker.checked,
        head_id,
        message=f"audit chain intact: {walker.checked} records verified",
        anchor_checkpoint_id=anchor.checkpoint_id,
    )
    return _with_anchors(log, result, with_anchors, extra_anchors, first_id, losses)


def _head_problem(
    walker: ChainWalker, head_id: int, head_hash: str, cps: list[AuditCheckpoint]
) -> tuple[int, str, str] | None:
    last_id = walker.expected_id - 1
    if head_id > last_id:
        return (
            last_id + 1,
            "audit.record_missing",
            f"records {last_id + 1}..{head_id} are missing (the log was truncated)",
        )
    if head_hash != walker.prev_hash:
        return (
            head_id,
            "audit.head_mismatch",
            f"the chain head does not match record {head_id}",
        )
    beyond = [cp for cp in cps if cp.head_id > last_id]
    if beyond:
        return (
            last_id + 1,
            "audit.record_missing",
            f"checkpoint {beyond[0].id} covers record {beyond[0].head_id}, which is missing",
        )
    if walker.checked and not walker.signed_seen and not any(cp.head_id == head_id for cp in cps):
        return (
            head_id,
            "audit.head_unsigned",
            f"no signature covers the chain up to record {head_id}: its records could have "
            "been rewritten by anyone with write access (an upgraded log is re-anchored on "
            "its next start)",
        )
    return None


def _with_anchors(
    log: AuditLog,
    result: VerifyResult,
    with_anchors: bool,
    extra: Sequence[tuple[str, Iterable[AnchorLine]]],
    first_id: int | None,
    losses: Sequence[DeclaredLoss] = (),
) -> VerifyResult:
    """Check the external anchors; their failure replaces an intact verdict."""
    if losses:
        declared = [
            f"records {x.first}..{x.last} were declared lost in record {x.record_id} ({x.time})"
            for x in losses
        ]
        result = replace(result, notes=[*result.notes, *declared])
    sources = log.anchor_sources(extra) if with_anchors else []
    if not sources:
        if not with_anchors:
            return result
        note = (
            "the configured anchor stores are write-only (syslog): pass --anchors FILE with "
            "what the collector stored"
            if log.anchors
            else "no external anchor store is configured"
        ) + ": deleting the newest records cannot be detected"
        return replace(result, notes=[*result.notes, note])
    report = check_anchors(
        log.engine,
        sources,
        log.trusted,
        head_id=result.head_id,
        first_id=first_id,
        losses=losses,
    )
    result = replace(
        result,
        anchors_checked=report.checked,
        anchor_head_id=report.latest_id,
        anchor_time=report.latest_time,
        unanchored=max(0, result.head_id - report.latest_id) if report.latest_id else 0,
        notes=[*result.notes, *report.notes],
    )
    empty = [name for name, n in report.sources.items() if n == 0]
    if not result.ok:
        return result
    if report.failure is not None:
        bad_id, code, message = report.failure
        return replace(result, ok=False, first_bad_id=bad_id, reason_code=code, message=message)
    if result.head_id > 0 and report.latest_id is None:
        return replace(
            result,
            ok=False,
            first_bad_id=None,
            reason_code="audit.anchor_missing",
            message=f"the log holds records up to {result.head_id} but no external anchor "
            f"store ({', '.join(empty)}) holds any anchor: the anchors were removed, or "
            "never written",
        )
    notes = [*result.notes, *(f"anchor store {name} holds no anchor yet" for name in empty)]
    if result.unanchored:
        notes.append(
            f"{result.unanchored} newest records are not anchored outside the database yet"
        )
    return replace(
        result,
        notes=notes,
        message=f"{result.message}; external anchor at record {report.latest_id} "
        f"({report.latest_time}) matches",
    )


def check_anchors(
    engine: Engine,
    sources: Iterable[tuple[str, Iterable[AnchorLine]]],
    trusted: TrustedKeys,
    *,
    head_id: int,
    first_id: int | None,
    losses: Sequence[DeclaredLoss] = (),
) -> AnchorReport:
    """Check every anchor against the stored chain (module docstring). ``first_id``: the oldest
    record left (None when none is): anchors below it were purged with their records. Anchors
    of ``losses`` are skipped."""
    report = AnchorReport()
    latest: tuple[int, AnchorLine] | None = None
    for label, lines in sources:
        report.sources[label] = 0
        pending: list[tuple[int, str, AnchorLine]] = []
        for line in lines:
            if report.failure is not None:
                return report
            item = _anchor_of(line, report)
            if item is None:
                continue
            report.sources[label] += 1
            time = line.signed.body.get("time") if line.signed else None
            if any(loss.covers(item[0], time) for loss in losses):
                continue
            pending.append(item)
            if latest is None or item[0] > latest[0]:
                latest = (item[0], line)
            if len(pending) >= _BATCH:
                _check_batch(engine, pending, trusted, head_id, first_id, report)
                pending = []
        if report.failure is None:
            _check_batch(engine, pending, trusted, head_id, first_id, report)
    if report.failure is None and latest is not None:
        line = latest[1]
        assert line.signed is not None
        if not trusted.signed_valid(line.signed):
            report.failure = _forged(line)
        report.latest_id = latest[0]
        report.latest_time = str(line.signed.body.get("time"))
    return report


def _anchor_of(line: AnchorLine, report: AnchorReport) -> tuple[int, str, AnchorLine] | None:
    st = line.signed
    if st is None:
        if line.tolerated:
            report.notes.append(f"{line.where}: a torn last line (a write cut short), ignored")
            return None
        report.failure = (None, "audit.anchor_invalid", f"{line.where} is not an audit anchor")
        return None
    if st.kind != CHECKPOINT:
        return None
    hid, hh = st.body.get("head_id"), st.body.get("head_hash")
    if not isinstance(hid, int) or not isinstance(hh, str):
        report.failure = (None, "audit.anchor_invalid", f"{line.where} is not an audit anchor")
        return None
    return hid, hh, line


def _forged(line: AnchorLine) -> tuple[int | None, str, str]:
    return (
        None,
        "audit.anchor_invalid",
        f"{line.where} carries a bad or untrusted signature: someone wrote into the anchor store",
    )


def _check_batch(
    engine: Engine,
    batch: list[tuple[int, str, AnchorLine]],
    trusted: TrustedKeys,
    head_id: int,
    first_id: int | None,
    report: AnchorReport,
) -> None:
    wanted = sorted({hid for hid, _, _ in batch if first_id is not None and hid >= first_id})
    stored: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        ids = wanted[start : start + 500]
        with engine.connect() as conn:
            rows = conn.execute(
                select(AuditRecordRow.id, AuditRecordRow.hash).where(AuditRecordRow.id.in_(ids))
            ).all()
        stored.update({int(r.id): str(r.hash) for r in rows})
    for hid, hh, line in batch:
        report.checked += 1
        assert line.signed is not None
        time = line.signed.body.get("time")
        if hid > head_id:
            if not trusted.signed_valid(line.signed):
                report.failure = _forged(line)
            else:
                report.failure = (
                    head_id + 1,
                    "audit.truncated",
                    f"records {head_id + 1}..{hid} are missing: {line.where} (signed {time}) "
                    f"anchors record {hid}, but the database's chain ends at {head_id}; the "
                    "newest records were deleted or the log was wiped",
                )
            return
        if hid == 0 or first_id is None or hid < first_id:
            continue  # purged with its records (the purge's signed checkpoint covers them)
        if stored.get(hid) != hh:
            if not trusted.signed_valid(line.signed):
                report.failure = _forged(line)
            else:
                report.failure = (
                    hid,
                    "audit.anchor_mismatch",
                    f"record {hid} differs from {line.where} (signed {time}): the chain was "
                    "rewritten after it was anchored",
                )
            return
