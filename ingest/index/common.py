"""Rules both index backends share: argument checks, the ACL group list, point validation.

Keeping them in one place is what makes the two implementations behave identically: the
backends only translate an already-checked request into their engine's request objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.errors import BadPointError, BadQueryError
from ingest.index.base import Fusion, SearchMode
from ingest.model import ChunkPoint, SparseVector

# Payload fields with a keyword index (filters on them stay fast at any size).
KEYWORD_INDEXES = ("allowed_groups", "denied_groups", "doc_id", "source")
ACL_FIELDS = ("allowed_groups", "denied_groups")
# RRF constant, the same on both engines (Qdrant's server default differs between versions).
RRF_K = 60
# Hybrid prefetch depth when the caller gives none: each arm returns this many candidates.
MIN_CANDIDATES = 40
SCROLL_BATCH = 512


def acl_groups(groups: frozenset[str] | set[str] | Sequence[str]) -> list[str]:
    """The caller's groups as a sorted list, blanks dropped. Empty means: return nothing."""
    if isinstance(groups, str):
        raise BadQueryError("groups must be a set of group names, not a single string")
    return sorted({g for g in groups if isinstance(g, str) and g.strip()})


def readable_by(payload: dict[str, object], groups: frozenset[str] | set[str]) -> bool:
    """The search filter's rule, for one point already in hand: readable when any of the
    caller's groups is among ``allowed_groups`` and none is among ``denied_groups`` (empty
    groups or readers: nobody; deny wins).

    For callers that fetch a point by id rather than search (the UI's citation download):
    the same decision the engines' ``MatchAny`` filter and ``must_not`` make, so both agree."""
    allowed = payload.get("allowed_groups")
    if not isinstance(allowed, list):
        return False
    mine = set(acl_groups(groups))
    denied = payload.get("denied_groups") or []
    if not isinstance(denied, list) or mine & {g for g in denied if isinstance(g, str)}:
        return False
    return bool(mine & {g for g in allowed if isinstance(g, str)})


def check_search(
    *,
    mode: SearchMode,
    dense: Sequence[float] | None,
    sparse: SparseVector | None,
    limit: int,
    fusion: Fusion,
    dim: int | None,
) -> None:
    if mode not in ("dense", "lexical", "hybrid"):
        raise BadQueryError(f"unknown search mode {mode!r} (dense, lexical or hybrid)")
    if fusion not in ("rrf", "dbsf"):
        raise BadQueryError(f"unknown fusion {fusion!r} (rrf or dbsf)")
    if limit < 1:
        raise BadQueryError(f"limit must be >= 1, got {limit}")
    if mode in ("dense", "hybrid"):
        if dense is None:
            raise BadQueryError(f"mode {mode!r} needs a dense query vector")
        if dim is not None and len(dense) != dim:
            raise BadQueryError(f"dense query has {len(dense)} dimensions, the index has {dim}")
    if mode in ("lexical", "hybrid") and sparse is None:
        raise BadQueryError(f"mode {mode!r} needs a sparse (lexical) query vector")


def candidates_for(limit: int, candidates: int | None) -> int:
    return max(limit, candidates if candidates is not None else max(4 * limit, MIN_CANDIDATES))


def check_points(points: Sequence[ChunkPoint], dim: int) -> None:
    """Reject a malformed point before anything reaches the engine (nothing half-written)."""
    for p in points:
        where = f"point {p.id}"
        if len(p.dense) != dim:
            raise BadPointError(f"{where}: dense vector has {len(p.dense)} dims, index has {dim}")
        if not all(math.isfinite(x) for x in p.dense):
            raise BadPointError(f"{where}: dense vector has NaN or infinite values")
        if len(p.sparse.indices) != len(p.sparse.values):
            raise BadPointError(f"{where}: sparse indices and values differ in length")
        if any(i < 0 or i > 0xFFFFFFFF for i in p.sparse.indices):
            raise BadPointError(f"{where}: sparse indices must be uint32")
        groups = p.payload.get("allowed_groups")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise BadPointError(
                f"{where}: payload 'allowed_groups' must be a list of group names "
                "([] = readable by nobody)"
            )
        denied = p.payload.get("denied_groups", [])
        if not isinstance(denied, list) or not all(isinstance(g, str) for g in denied):
            raise BadPointError(f"{where}: payload 'denied_groups' must be a list of group names")
        if not isinstance(p.payload.get("doc_id"), str):
            raise BadPointError(f"{where}: payload 'doc_id' is missing")


def check_acl_payload(payload: object) -> str | None:
    """Why a ``set_payload`` of ACL fields is malformed (None when it is fine)."""
    if not isinstance(payload, dict):
        return "payload must be a mapping"
    for key in ACL_FIELDS:
        if key in payload:
            value = payload[key]
            if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
                return f"'{key}' must be a list of group names"
    return None
