"""Wraps an index's engine handle and checks every scoring call carries the caller's ACL filter.

Each engine is described by an :class:`Engine`: the index attribute that holds its handle (Edge:
the ``EdgeShard`` in ``_shard``; qdrant-client: the ``QdrantClient`` in ``client``), the methods
that score or return points, and the check of one such call. A search that reaches the engine
through any of those methods is recorded and checked: the top-level request and every prefetch
must have a ``must`` condition ``allowed_groups`` any-of the caller's groups, and nothing else
that returns payload may be called during a search. Each filter must also carry the deny
rule: a ``must_not`` condition ``denied_groups`` any-of *all* the caller's groups. A backend on
another engine describes its engine the same way, beside its contract subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import qdrant_edge as qe
from qdrant_client import models

CheckFn = Callable[[str, tuple[Any, ...], dict[str, Any], frozenset[str]], None]


class MissingAclFilter(AssertionError):
    pass


@dataclass(frozen=True)
class Engine:
    """Where an index keeps its engine handle, which engine calls read points, how to check one."""

    attr: str
    reads: frozenset[str]
    check: CheckFn


class EngineSpy:
    def __init__(self, target: Any, engine: Engine, groups: frozenset[str] | None = None) -> None:
        self._target = target
        self.engine = engine
        self.groups = groups
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.forbid_all = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.forbid_all:
                raise AssertionError(f"engine touched: {name}")
            self.calls.append((name, args, kwargs))
            if name in self.engine.reads and self.groups is not None:
                self.engine.check(name, args, kwargs, self.groups)
            return attr(*args, **kwargs)

        return wrapper


def _wanted(groups: frozenset[str]) -> set[str]:
    return {g for g in groups if g.strip()}


def _edge_deny_ok(flt: Any, groups: frozenset[str]) -> bool:
    for cond in flt.must_not or []:
        if (
            isinstance(cond, qe.FieldCondition)
            and cond.key == "denied_groups"
            and isinstance(cond.match, qe.MatchAny)
            and set(cond.match.value) >= _wanted(groups)
        ):
            return True
    return False


def _client_deny_ok(flt: Any, groups: frozenset[str]) -> bool:
    must_not = flt.must_not or []
    for cond in must_not if isinstance(must_not, list) else [must_not]:
        if (
            isinstance(cond, models.FieldCondition)
            and cond.key == "denied_groups"
            and isinstance(cond.match, models.MatchAny)
            and set(cond.match.any) >= _wanted(groups)
        ):
            return True
    return False


def _edge_filter_ok(flt: Any, groups: frozenset[str]) -> bool:
    if flt is None or not flt.must or not _edge_deny_ok(flt, groups):
        return False
    for cond in flt.must:
        if (
            isinstance(cond, qe.FieldCondition)
            and cond.key == "allowed_groups"
            and isinstance(cond.match, qe.MatchAny)
            and cond.match.value
            and set(cond.match.value) <= groups
        ):
            return True
    return False


def _client_filter_ok(flt: Any, groups: frozenset[str]) -> bool:
    if not isinstance(flt, models.Filter) or not flt.must or not _client_deny_ok(flt, groups):
        return False
    must = flt.must if isinstance(flt.must, list) else [flt.must]
    for cond in must:
        if (
            isinstance(cond, models.FieldCondition)
            and cond.key == "allowed_groups"
            and isinstance(cond.match, models.MatchAny)
            and cond.match.any
            and set(cond.match.any) <= groups
        ):
            return True
    return False


def _edge_request_ok(req: Any, groups: frozenset[str]) -> bool:
    if not _edge_filter_ok(req.filter, groups):
        return False
    return all(_edge_request_ok(p, groups) for p in getattr(req, "prefetches", []) or [])


def _client_prefetch_ok(pf: Any, groups: frozenset[str]) -> bool:
    if not _client_filter_ok(pf.filter, groups):
        return False
    nested = pf.prefetch or []
    nested = nested if isinstance(nested, list) else [nested]
    return all(_client_prefetch_ok(p, groups) for p in nested)


def check_edge_call(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], groups: frozenset[str]
) -> None:
    """Raise MissingAclFilter unless this Edge read carries the ACL filter everywhere."""
    edge_reqs = [a for a in args if isinstance(a, (qe.QueryRequest, qe.SearchRequest))]
    batch = [a for a in args if isinstance(a, qe.QueryBatchRequest)]
    for b in batch:
        edge_reqs.extend(b.queries)
    if not edge_reqs:
        raise MissingAclFilter(
            f"search reached the engine through {name}, which the spy cannot verify"
        )
    for req in edge_reqs:
        if not _edge_request_ok(req, groups):
            raise MissingAclFilter(f"{name}: Edge request without the ACL filter: {req!r}")


def check_client_call(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], groups: frozenset[str]
) -> None:
    """Raise MissingAclFilter unless this qdrant-client read carries the ACL filter everywhere."""
    if name not in {"query_points", "query_points_groups"}:
        raise MissingAclFilter(
            f"search reached the engine through {name}, which the spy cannot verify"
        )
    if not _client_filter_ok(kwargs.get("query_filter"), groups):
        raise MissingAclFilter(f"{name}: query_filter lacks the ACL filter: {kwargs!r}")
    prefetch = kwargs.get("prefetch") or []
    prefetch = prefetch if isinstance(prefetch, list) else [prefetch]
    for pf in prefetch:
        if not _client_prefetch_ok(pf, groups):
            raise MissingAclFilter(f"{name}: prefetch without the ACL filter: {pf!r}")


EDGE = Engine(
    attr="_shard",
    reads=frozenset({"query", "query_batch", "search", "scroll", "retrieve", "facet", "count"}),
    check=check_edge_call,
)
QDRANT_CLIENT = Engine(
    attr="client",
    reads=frozenset(
        {
            "query_points",
            "query_batch_points",
            "query_points_groups",
            "search_batch",
            "recommend",
            "discover",
            "search_groups",
            "search_matrix_pairs",
            "search_matrix_offsets",
            "scroll",
            "retrieve",
            "facet",
            "count",
        }
    ),
    check=check_client_call,
)


def install(index: Any, engine: Engine, groups: frozenset[str] | None) -> EngineSpy:
    """Swap the index's engine handle for a spy."""
    spy = EngineSpy(getattr(index, engine.attr), engine, groups)
    setattr(index, engine.attr, spy)
    return spy


def uninstall(index: Any, spy: EngineSpy) -> None:
    setattr(index, spy.engine.attr, spy._target)
