"""Which ``[n]`` markers a generated answer uses."""

from __future__ import annotations

from assistant.citations import cited_numbers


def test_numbers_in_brackets_in_first_use_order() -> None:
    assert cited_numbers("A [2]. B [1, 3] and [source 2]; C [Sources 4; 1]", 4) == [2, 1, 3, 4]


def test_numbers_outside_the_given_sources_are_ignored() -> None:
    assert cited_numbers("see [0] [5] [12] [2]", 3) == [2]
    assert cited_numbers("in 2019 [citation needed]", 3) == []
