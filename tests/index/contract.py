"""The VectorIndex contract: what every backend of :mod:`ingest.index` must do, access control
first. Modelled on Haystack 2's ``DocumentStoreBaseTests``: the tests live here, once; each
backend's test module subclasses :class:`VectorIndexContract` as ``Test<Backend>`` and provides
what only it knows:

- :meth:`~VectorIndexContract.settings`: the configuration under which ``open_index`` (the real
  factory) opens the backend's store below a directory;
- :attr:`~VectorIndexContract.engine`: its engine, for the ACL spy (:mod:`tests.index.spy`);
- :meth:`~VectorIndexContract.create_collection`: run ``ensure_collection`` and report the
  schema as the engine sees it;
- :meth:`~VectorIndexContract.unfiltered_reads`: raw engine reads without (or with a too wide)
  ACL filter, which the spy must reject (so the spy cannot pass vacuously).

Adding a backend is one subclass; nothing here changes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from core.errors import BadPointError, BadQueryError, DimensionMismatchError, NoCollectionError
from core.settings import Settings
from ingest.encoding.sparse import encode_query
from ingest.index import VectorIndex, open_index
from ingest.index.base import SearchMode
from ingest.model import ChunkPoint, SparseVector
from tests.index import spy
from tests.index.data import DIM, EVERYONE, MODES, ask, by_path, chunk, make_corpus, unit

KEYWORD_FIELDS = ("allowed_groups", "denied_groups", "doc_id", "source")


@dataclass(frozen=True)
class Schema:
    """A collection's schema as the engine reports it (or, where the engine does not report
    payload indexes, as the index asked for them)."""

    dim: int
    distance: str  # lower case: "cosine"
    idf: bool  # the sparse vector has the IDF modifier
    payload_indexes: frozenset[tuple[str, str]]  # (field, index type in lower case: "keyword")


class VectorIndexContract:
    """Every :class:`~ingest.index.base.VectorIndex` implementation passes these tests."""

    engine: ClassVar[spy.Engine]

    # -- what a backend provides -----------------------------------------------------------
    def settings(self, root: Path) -> Settings:
        raise NotImplementedError

    def create_collection(self, idx: VectorIndex, dim: int) -> Schema:
        raise NotImplementedError

    def unfiltered_reads(
        self, engine: spy.EngineSpy, idx: VectorIndex, corpus: list[ChunkPoint]
    ) -> list[Callable[[], object]]:
        raise NotImplementedError

    # -- fixtures ----------------------------------------------------------------------------
    @pytest.fixture
    def corpus(self) -> list[ChunkPoint]:
        return make_corpus()

    @pytest.fixture
    def opener(self, tmp_path: Path) -> Iterator[Callable[[], VectorIndex]]:
        """Opens the backend's store under tmp_path (the same store on every call); closes all."""
        opened: list[VectorIndex] = []

        def _open() -> VectorIndex:
            idx = open_index(self.settings(tmp_path))
            opened.append(idx)
            return idx

        yield _open
        for idx in opened:
            idx.close()

    @pytest.fixture
    def index(self, opener: Callable[[], VectorIndex], corpus: list[ChunkPoint]) -> VectorIndex:
        idx = opener()
        idx.ensure_collection(DIM)
        idx.upsert(corpus)
        idx.flush()
        return idx

    # -- schema ------------------------------------------------------------------------------
    def test_collection_schema(self, opener: Callable[[], VectorIndex]) -> None:
        d = self.create_collection(opener(), DIM)
        assert d.dim == DIM and d.distance == "cosine" and d.idf is True
        assert d.payload_indexes == {(f, "keyword") for f in KEYWORD_FIELDS}

    def test_ensure_collection_is_idempotent_and_rejects_other_dim(
        self, index: VectorIndex
    ) -> None:
        index.ensure_collection(DIM)
        assert index.count() == 8
        with pytest.raises(DimensionMismatchError, match="embedding model changed"):
            index.ensure_collection(DIM + 1)

    def test_empty_store_reads_and_refuses_writes(self, opener: Callable[[], VectorIndex]) -> None:
        idx = opener()
        assert idx.count() == 0
        assert (
            idx.search(groups=frozenset({"hr"}), dense=[1.0] + [0.0] * (DIM - 1), mode="dense")
            == []
        )
        assert list(idx.iter_doc_ids()) == [] and idx.doc_point_ids("x") == set()
        with pytest.raises(NoCollectionError):
            idx.upsert(
                [chunk(random.Random(1), source="s", path="a", index=0, text="t", groups=["hr"])]
            )

    # -- writes ------------------------------------------------------------------------------
    def test_upsert_roundtrip_and_idempotent_reupsert(
        self, index: VectorIndex, corpus: list[ChunkPoint]
    ) -> None:
        assert index.count() == len(corpus)
        index.upsert(corpus)
        index.upsert(corpus[:3])
        assert index.count() == len(corpus)
        stored = {p.id: p for batch in index.scroll_points(batch_size=3) for p in batch}
        assert set(stored) == {p.id for p in corpus}
        for p in corpus:
            got = stored[p.id]
            assert got.payload == p.payload
            assert got.dense == pytest.approx(p.dense, abs=1e-5)
            assert got.sparse.indices == p.sparse.indices
            assert got.sparse.values == pytest.approx(p.sparse.values, rel=1e-5)

    def test_reupsert_replaces_content(self, index: VectorIndex, corpus: list[ChunkPoint]) -> None:
        p = corpus[2]
        changed = ChunkPoint(
            p.id, unit(random.Random(99)), p.sparse, {**p.payload, "text": "new text"}
        )
        index.upsert([changed])
        hits = index.search(groups=frozenset({"eng"}), dense=changed.dense, mode="dense", limit=1)
        assert hits[0].id == p.id and hits[0].payload["text"] == "new text"
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)

    def test_delete_and_doc_ids(self, index: VectorIndex, corpus: list[ChunkPoint]) -> None:
        deploy = [p for p in corpus if p.payload["path"] == "eng/deploy.md"]
        doc_id = deploy[0].payload["doc_id"]
        assert index.doc_point_ids(doc_id) == {p.id for p in deploy}
        pairs = set(index.iter_doc_ids())
        assert pairs == {(p.id, p.payload["doc_id"]) for p in corpus}
        assert {pid for pid, _ in index.iter_doc_ids("wiki")} == {
            p.id for p in corpus if p.payload["source"] == "wiki"
        }
        index.delete([deploy[0].id])
        index.delete([deploy[0].id])  # deleting twice is harmless
        assert index.doc_point_ids(doc_id) == {deploy[1].id}
        assert index.count() == len(corpus) - 1
        hits = ask(index, deploy[0], frozenset({"eng"}), "hybrid", limit=20)
        assert deploy[0].id not in {h.id for h in hits}

    def test_set_payload_changes_acl_without_reembedding(
        self, index: VectorIndex, corpus: list[ChunkPoint]
    ) -> None:
        salary = by_path(corpus, "hr/salaries.md")
        assert salary.id not in {h.id for h in ask(index, salary, frozenset({"eng"}), "dense")}
        index.set_payload([salary.id], {"allowed_groups": ["hr", "eng"]})
        assert ask(index, salary, frozenset({"eng"}), "dense", limit=1)[0].id == salary.id
        stored = {p.id: p for b in index.scroll_points() for p in b}[salary.id]
        assert stored.dense == pytest.approx(salary.dense, abs=1e-5)
        assert stored.payload["text"] == salary.payload["text"]  # other keys untouched
        index.set_payload([salary.id], {"allowed_groups": []})
        for mode in MODES:
            assert salary.id not in {h.id for h in ask(index, salary, EVERYONE, mode, limit=20)}

    def test_bad_points_are_rejected_before_any_write(
        self, index: VectorIndex, corpus: list[ChunkPoint]
    ) -> None:
        rng = random.Random(3)
        good = chunk(rng, source="s", path="new.md", index=0, text="fresh", groups=["hr"])
        short = chunk(rng, source="s", path="new.md", index=1, text="x", groups=["hr"], dim=DIM - 1)
        no_acl = chunk(rng, source="s", path="new.md", index=2, text="y", groups=["hr"])
        del no_acl.payload["allowed_groups"]
        for bad in (short, no_acl):
            with pytest.raises(BadPointError):
                index.upsert([good, bad])
        assert index.count() == len(corpus)
        with pytest.raises(BadPointError, match="list of group names"):
            index.upsert(
                [
                    ChunkPoint(
                        good.id, good.dense, good.sparse, {**good.payload, "allowed_groups": "hr"}
                    )
                ]
            )

    # -- search ------------------------------------------------------------------------------
    @pytest.mark.parametrize("mode", MODES)
    def test_search_modes_find_the_matching_chunk(
        self, index: VectorIndex, corpus: list[ChunkPoint], mode: str
    ) -> None:
        target = by_path(corpus, "eng/deploy.md")
        hits = index.search(
            groups=frozenset({"eng"}),
            dense=target.dense,
            sparse=encode_query("blue green pipeline"),
            mode=mode,  # type: ignore[arg-type]
            limit=3,
        )
        assert hits and hits[0].id == target.id
        assert hits[0].payload["path"] == "eng/deploy.md" and hits[0].payload["page"] == 1
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    def test_lexical_ranks_by_bm25(self, index: VectorIndex, corpus: list[ChunkPoint]) -> None:
        hits = index.search(
            groups=EVERYONE, sparse=encode_query("expense reports travel"), mode="lexical", limit=5
        )
        assert hits[0].payload["text"].startswith("Expense reports for travel")
        assert all(h.score > 0 for h in hits)

    @pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
    def test_hybrid_fuses_both_arms(
        self, index: VectorIndex, corpus: list[ChunkPoint], fusion: str
    ) -> None:
        dense_target = by_path(corpus, "eng/deploy.md", 1)  # rollback chunk by vector
        hits = index.search(
            groups=frozenset({"eng"}),
            dense=dense_target.dense,
            sparse=encode_query("reset password portal"),  # the IT chunk by words
            mode="hybrid",
            fusion=fusion,  # type: ignore[arg-type]
            limit=4,
        )
        ids = [h.id for h in hits]
        it_chunk = by_path(corpus, "it/passwords.md")
        assert dense_target.id in ids[:2] and it_chunk.id in ids[:2]

    def test_sources_filter(self, index: VectorIndex, corpus: list[ChunkPoint]) -> None:
        it_chunk = by_path(corpus, "it/passwords.md")
        hits = ask(index, it_chunk, EVERYONE, "hybrid", limit=20, sources=["drive"])
        assert hits and all(h.payload["source"] == "drive" for h in hits)
        assert [h.id for h in ask(index, it_chunk, EVERYONE, "dense", sources=["wiki"])] == [
            it_chunk.id
        ]
        assert ask(index, it_chunk, EVERYONE, "dense", sources=[]) == []

    def test_bad_queries_are_clear_errors(self, index: VectorIndex) -> None:
        with pytest.raises(BadQueryError, match="dense query vector"):
            index.search(groups=frozenset({"hr"}), sparse=encode_query("x"), mode="dense")
        with pytest.raises(BadQueryError, match="sparse"):
            index.search(groups=frozenset({"hr"}), dense=[0.1] * DIM, mode="hybrid")
        with pytest.raises(BadQueryError, match="dimensions"):
            index.search(groups=frozenset({"hr"}), dense=[0.1] * 3, mode="dense")
        with pytest.raises(BadQueryError, match="single string"):
            index.search(groups="hr", dense=[0.1] * DIM, mode="dense")  # type: ignore[arg-type]

    def test_stopword_only_query(self, index: VectorIndex, corpus: list[ChunkPoint]) -> None:
        empty = encode_query("the and of")
        assert empty == SparseVector([], [])
        assert index.search(groups=EVERYONE, sparse=empty, mode="lexical") == []
        target = by_path(corpus, "all/handbook.md")
        hits = index.search(groups=EVERYONE, dense=target.dense, sparse=empty, mode="hybrid")
        assert hits[0].id == target.id  # the dense arm still answers

    # -- durability --------------------------------------------------------------------------
    def test_data_survives_close_and_reopen(
        self, opener: Callable[[], VectorIndex], corpus: list[ChunkPoint]
    ) -> None:
        idx = opener()
        idx.ensure_collection(DIM)
        idx.upsert(corpus)
        idx.set_payload([corpus[0].id], {"classification": "secret"})
        idx.delete([corpus[1].id])
        idx.flush()
        idx.close()
        idx.close()  # idempotent
        again = opener()
        again.ensure_collection(DIM)
        assert again.count() == len(corpus) - 1
        hit = ask(again, corpus[0], frozenset({"hr"}), "hybrid", limit=1)[0]
        assert hit.id == corpus[0].id and hit.payload["classification"] == "secret"

    # -- access control ----------------------------------------------------------------------
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
    def test_chunk_without_groups_is_returned_to_nobody(
        self, index: VectorIndex, corpus: list[ChunkPoint], mode: str, fusion: str
    ) -> None:
        secret = by_path(corpus, "secret/unassigned.md")
        for groups in (EVERYONE, frozenset({"hr"}), frozenset({""}) | EVERYONE):
            hits = ask(index, secret, groups, mode, fusion=fusion, limit=50)
            assert secret.id not in {h.id for h in hits}
            assert all(h.payload["allowed_groups"] for h in hits)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
    def test_hr_chunk_never_reaches_eng_even_when_quoted(
        self, index: VectorIndex, corpus: list[ChunkPoint], mode: str, fusion: str
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
        self, index: VectorIndex, corpus: list[ChunkPoint], groups: frozenset[str]
    ) -> None:
        s = spy.install(index, self.engine, None)
        s.forbid_all = True
        try:
            for mode in MODES:
                assert ask(index, corpus[0], groups, mode) == []
        finally:
            spy.uninstall(index, s)
        assert s.calls == []

    def test_every_search_path_carries_the_acl_filter(
        self, index: VectorIndex, corpus: list[ChunkPoint]
    ) -> None:
        groups = frozenset({"eng", "it"})
        s = spy.install(index, self.engine, groups)
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
        reads = [c for c in s.calls if c[0] in self.engine.reads]
        assert len(reads) == 3 * 2 * 3 * 3  # every search reached the engine exactly once, checked

    def test_filter_spy_detects_a_missing_filter(
        self, index: VectorIndex, corpus: list[ChunkPoint]
    ) -> None:
        """The spy is not vacuous: an unfiltered (or too wide) request fails the check."""
        s = spy.install(index, self.engine, frozenset({"eng"}))
        engine = s._target
        try:
            reads = self.unfiltered_reads(s, index, corpus)
            assert reads, "the backend must offer at least one unfiltered read to reject"
            for read in reads:
                with pytest.raises(spy.MissingAclFilter):
                    read()
        finally:
            spy.uninstall(index, s)
        assert engine is not None

    # -- lexical scores do not leak hidden documents -----------------------------------------
    @pytest.mark.parametrize("mode", ["lexical", "hybrid"])
    def test_hidden_chunks_do_not_move_lexical_scores(
        self, index: VectorIndex, corpus: list[ChunkPoint], mode: SearchMode
    ) -> None:
        """IDF is computed over the caller's readable chunks: hr documents full of a word cannot
        be detected by an eng user through the scores of eng's own chunks."""
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
        hr_view = index.search(
            groups=frozenset({"hr", "eng"}), sparse=query, mode="lexical", limit=40
        )
        assert any(h.payload["path"].startswith("hr/deploy") for h in hr_view)

    # -- deny entries: a caller in any denied group never gets the chunk -----------------------
    @staticmethod
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
    def test_denied_group_never_sees_the_chunk(
        self, index: VectorIndex, mode: SearchMode, fusion: str
    ) -> None:
        pay, policies = self._denied_corpus(index)
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

    def test_revoking_by_set_payload_applies_the_deny(self, index: VectorIndex) -> None:
        pay, _ = self._denied_corpus(index)
        bob = frozenset({"hr-managers", "bob-sid"})
        assert ask(index, pay, bob, "dense", limit=50)[0].id == pay.id
        index.set_payload([pay.id], {"denied_groups": ["bob-sid"]})
        index.flush()
        assert pay.id not in {h.id for h in ask(index, pay, bob, "hybrid", limit=50)}
        index.set_payload([pay.id], {"denied_groups": []})
        assert ask(index, pay, bob, "dense", limit=50)[0].id == pay.id

    def test_malformed_denied_groups_are_refused(self, index: VectorIndex) -> None:
        from core.errors import VectorIndexError

        bad = chunk(random.Random(3), source="s", path="x.md", index=0, text="t", groups=["hr"])
        bad.payload["denied_groups"] = "mallory"
        with pytest.raises(BadPointError, match="denied_groups"):
            index.upsert([bad])
        with pytest.raises(VectorIndexError, match="denied_groups"):
            index.set_payload(["00000000-0000-0000-0000-000000000000"], {"denied_groups": "x"})


def schema_type(value: Any) -> str:
    """An engine's payload index type (an enum) as a lower-case name: ``keyword``."""
    name = getattr(value, "value", None) or getattr(value, "name", None) or str(value)
    return str(name).rsplit(".", 1)[-1].lower()
