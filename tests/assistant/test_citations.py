from __future__ import annotations

from assistant.citations import build_citations, cited_numbers, snippet
from assistant.types import RetrievedChunk


def _c(n: int) -> RetrievedChunk:
    return RetrievedChunk(f"c{n}", f"d{n}", f"p{n}.md", "s", "Sec", None, n, "text " * 100, 1.0, n)


def test_numbers_in_brackets_in_first_use_order() -> None:
    assert cited_numbers("A [2]. B [1, 3] and [source 2]; C [Sources 4; 1]", 4) == [2, 1, 3, 4]


def test_numbers_outside_the_given_sources_are_ignored() -> None:
    assert cited_numbers("see [0] [5] [12] [2]", 3) == [2]
    assert cited_numbers("in 2019 [citation needed]", 3) == []


def test_only_cited_sources_are_listed_when_the_model_cites() -> None:
    given = [_c(1), _c(2), _c(3)]
    cites, by_model = build_citations("Yes [3].", given)
    assert by_model is True
    assert [(c.n, c.chunk_id, c.path, c.page) for c in cites] == [(3, "c3", "p3.md", 3)]


def test_fallback_lists_every_given_source_and_says_so() -> None:
    given = [_c(1), _c(2)]
    cites, by_model = build_citations("An answer without numbers.", given)
    assert by_model is False
    assert [c.n for c in cites] == [1, 2]


def test_snippet_is_short_and_on_a_word_boundary() -> None:
    s = snippet("alpha beta " * 100, 50)
    assert len(s) <= 52 and s.endswith("…") and "  " not in s
