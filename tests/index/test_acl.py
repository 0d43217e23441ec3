"""Access control of both index backends (shared contract, parametrized over Edge and local
mode): no chunk reaches a caller outside its groups, on every search path."""

from __future__ import annotations

import random

import pytest

from ingest.encoding.sparse import encode_query
from ingest.index import VectorIndex
from ingest.index.base import SearchMode
from ingest.model import ChunkPoint
from tests.index import spy
from tests.index.conftest import EVERYONE, MODES, ask, by_path, chunk


# -- access control ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_chunk_without_groups_is_returned_to_nobody(
    index: VectorIndex, corpus: list[ChunkPoint], mode: str, fusion: str
) -> None:
    secret = by_path(corpus, "secret/unassigned.md")
    for groups in (EVERYONE, frozenset({"hr"}), frozenset({""}) | EVERYONE):
        hits = ask(index, secret, groups, mode, fusion=fusion, limit=50)
        assert secret.id not in {h.id for h in hits}
        assert all(h.payload["allowed_groups"] for h in hits)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_hr_chunk_never_reaches_eng_even_when_quoted(
    index: VectorIndex, corpus: list[ChunkPoint], mode: str, fusion: str
) -> None:
    salaries = [p for p in corpus if p.payload["path"] == "hr/salaries.md"]
    for p in salaries:
        hits = ask(index, p, frozenset({"eng"}), mode, fusion=fusion, limit=50)
        if mode != "lexical":  # the quote shares no words with eng's chunks
            assert hits, "eng must still get its own chunks"
        assert not {h.id for h in hits} & {s.id for s in salaries}
        assert all("eng" in h.payload["allowed_groups"] for h in hits)
        own = ask(index, p, frozenset({"hr"}), mode, fusion=fusion, limit=1)
        assert own[0].id == p.id  # the same query finds it for hr: the filter did the work


@pytest.mark.parametrize("groups", [frozenset(), frozenset({""}), frozenset({"  "})])
def test_empty_groups_return_nothing_without_touching_engine(
    index: VectorIndex, corpus: list[ChunkPoint], groups: frozenset[str]
) -> None:
    s = spy.install(index, None)
    s.forbid_all = True
    try:
        for mode in MODES:
            assert ask(index, corpus[0], groups, mode) == []
    finally:
        spy.uninstall(index, s)
    assert s.calls == []


def test_every_search_path_carries_the_acl_filter(
    index: VectorIndex, corpus: list[ChunkPoint]
) -> None:
    groups = frozenset({"eng", "it"})
    s = spy.install(index, groups)
    try:
        for mode in MODES:
            for fusion in ("rrf", "dbsf"):
                for sources in (None, ["drive"], ["drive", "wiki"]):
                    for limit, candidates in ((1, None), (5, 7), (30, None)):
                        ask(
                            index,
                            corpus[2],
                            groups,
                            mode,
                            fusion=fusion,
                            sources=sources,
                            limit=limit,
                            candidates=candidates,
                        )
    finally:
        spy.uninstall(index, s)
    reads = [c for c in s.calls if c[0] in spy.READ_METHODS]
    assert len(reads) == 3 * 2 * 3 * 3  # every search reached the engine exactly once, checked


def test_filter_spy_detects_a_missing_filter(index: VectorIndex, corpus: list[ChunkPoint]) -> None:
    """The spy is not vacuous: an unfiltered (or too wide) request fails the check."""
    s = spy.install(index, frozenset({"eng"}))
    engine = s._target
    try:
        if hasattr(index, "_shard"):
            import qdrant_edge as qe

            bare = qe.QueryRequest(limit=3, query=qe.Query.Nearest(corpus[0].dense, using="dense"))
            with pytest.raises(spy.MissingAclFilter):
                s.query(bare)
            wide = qe.QueryRequest(
                limit=3,
                query=qe.Query.Nearest(corpus[0].dense, using="dense"),
                filter=qe.Filter(
                    must=[qe.FieldCondition("allowed_groups", match=qe.MatchAny(["eng", "hr"]))]
                ),
            )
            with pytest.raises(spy.MissingAclFilter):
                s.query(wide)
            with pytest.raises(spy.MissingAclFilter):
                s.scroll(qe.ScrollRequest(limit=3))
            no_deny = qe.QueryRequest(
                limit=3,
                query=qe.Query.Nearest(corpus[0].dense, using="dense"),
                filter=qe.Filter(
                    must=[qe.FieldCondition("allowed_groups", match=qe.MatchAny(["eng"]))]
                ),
            )
            with pytest.raises(spy.MissingAclFilter):
                s.query(no_deny)
        else:
            from qdrant_client import models

            allowed_only = models.Filter(
                must=[
                    models.FieldCondition(key="allowed_groups", match=models.MatchAny(any=["eng"]))
                ]
            )
            with pytest.raises(spy.MissingAclFilter):
                s.query_points(  # type: ignore[attr-defined]
                    index.collection,
                    query=corpus[0].dense,
                    using="dense",
                    query_filter=allowed_only,
                )
            with pytest.raises(spy.MissingAclFilter):
                s.query_points(index.collection, query=corpus[0].dense, using="dense")  # type: ignore[attr-defined]
            with pytest.raises(spy.MissingAclFilter):
                s.scroll(index.collection, limit=3)  # type: ignore[attr-defined]
    finally:
        spy.uninstall(index, s)
    assert engine is not None


# -- lexical scores do not leak hidden documents ----------------------------------------
@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_hidden_chunks_do_not_move_lexical_scores(
    index: VectorIndex, corpus: list[ChunkPoint], mode: SearchMode
) -> None:
    """IDF is computed over the caller's readable chunks: hr documents full of a word cannot be
    detected by an eng user through the scores of eng's own chunks."""
    query = encode_query("deploy pipeline")
    target = by_path(corpus, "eng/deploy.md")

    def eng_scores() -> list[tuple[str, float]]:
        hits = index.search(
            groups=frozenset({"eng"}),
            dense=target.dense,
            sparse=query,
            mode=mode,
            limit=5,
        )
        return [(h.id, round(h.score, 5)) for h in hits]

    before = eng_scores()
    rng = random.Random(17)
    index.upsert(
        [
            chunk(
                rng,
                source="drive",
                path=f"hr/deploy{i}.md",
                index=0,
                text="deploy deploy pipeline plans",
                groups=["hr"],
            )
            for i in range(30)
        ]
    )
    assert eng_scores() == before
    hr_view = index.search(groups=frozenset({"hr", "eng"}), sparse=query, mode="lexical", limit=40)
    assert any(h.payload["path"].startswith("hr/deploy") for h in hr_view)


# -- deny entries: a caller in any denied group never gets the chunk ---------------------------
def _denied_corpus(index: VectorIndex) -> list[ChunkPoint]:
    rng = random.Random(23)
    points = [
        chunk(
            rng,
            source="share",
            path="hr/confidential/pay.md",
            index=0,
            text="Pay review outcomes for the managers are final in April.",
            groups=["hr-managers"],
        ),
        chunk(
            rng,
            source="share",
            path="hr/policies.md",
            index=0,
            text="Holiday policy: twenty five days for every employee.",
            groups=["hr", "hr-managers"],
        ),
    ]
    points[0].payload["denied_groups"] = ["contractors", "mallory-sid"]
    index.upsert(points)
    index.flush()
    return points


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_denied_group_never_sees_the_chunk(index: VectorIndex, mode: str, fusion: str) -> None:
    pay, policies = _denied_corpus(index)
    manager = frozenset({"hr-managers", "bob-sid"})
    mallory = frozenset({"hr-managers", "mallory-sid"})  # allowed by group, denied by name
    contractor = frozenset({"hr-managers", "hr", "contractors"})
    assert pay.id in {h.id for h in ask(index, pay, manager, mode, fusion=fusion, limit=50)}
    for token in (mallory, contractor):
        hits = ask(index, pay, token, mode, fusion=fusion, limit=50)
        assert pay.id not in {h.id for h in hits}
        assert not any(set(h.payload.get("denied_groups", [])) & token for h in hits)
    # the deny hides only its own chunk: the contractor still gets the policy chunk
    assert policies.id in {
        h.id for h in ask(index, policies, contractor, mode, fusion=fusion, limit=50)
    }


def test_revoking_by_set_payload_applies_the_deny(index: VectorIndex) -> None:
    pay, _ = _denied_corpus(index)
    bob = frozenset({"hr-managers", "bob-sid"})
    assert ask(index, pay, bob, "dense", limit=50)[0].id == pay.id
    index.set_payload([pay.id], {"denied_groups": ["bob-sid"]})
    index.flush()
    assert pay.id not in {h.id for h in ask(index, pay, bob, "hybrid", limit=50)}
    index.set_payload([pay.id], {"denied_groups": []})
    assert ask(index, pay, bob, "dense", limit=50)[0].id == pay.id


def test_malformed_denied_groups_are_refused(index: VectorIndex) -> None:
    from core.errors import BadPointError, VectorIndexError

    bad = chunk(random.Random(3), source="s", path="x.md", index=0, text="t", groups=["hr"])
    bad.payload["denied_groups"] = "mallory"
    with pytest.raises(BadPointError, match="denied_groups"):
        index.upsert([bad])
    with pytest.raises(VectorIndexError, match="denied_groups"):
        index.set_payload(["00000000-0000-0000-0000-000000000000"], {"denied_groups": "x"})
