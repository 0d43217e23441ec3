"""Grounding check of generated answers: sentence support and numbers."""

from __future__ import annotations

import pytest

from assistant.grounding import check, numbers
from tests.assistant.fakes import BagOfWordsEmbedder, chunk

PER_DIEM = chunk(
    1,
    "Travel — Per diem\nThe per diem abroad is 75 EUR per day. Hotels are booked through "
    "the travel desk, up to 1,200 EUR a week.",
)
LAPTOP = chunk(2, "IT — Devices\nA lost laptop must be reported within one hour.")


def test_numbers_are_normalised() -> None:
    assert numbers("75 EUR, 1,200 EUR, 1.50 days, v2 and 3.0") == {"75", "1200", "1.5", "3"}


def test_a_number_no_cited_source_contains_is_flagged() -> None:
    g, _ = check(
        "The per diem abroad is 150 EUR per day [1].",
        [PER_DIEM, LAPTOP],
        [0],
        BagOfWordsEmbedder(),
        min_match=0.5,
    )
    assert g.unsupported_numbers == ("150",)
    ok, _ = check(
        "The per diem abroad is 75 EUR per day [1].",
        [PER_DIEM, LAPTOP],
        [0],
        BagOfWordsEmbedder(),
        min_match=0.5,
    )
    assert ok.unsupported_numbers == () and ok.support_ratio == 1.0


def test_unsupported_sentences_are_listed_and_counted() -> None:
    g, matches = check(
        "The per diem abroad is 75 EUR per day [1]. Employees also receive a free gym "
        "membership and dental cover. Yes.",
        [PER_DIEM, LAPTOP],
        [0],
        BagOfWordsEmbedder(),
        min_match=0.5,
    )
    assert g.sentences == 2  # "Yes." is too short to judge
    assert g.unsupported == ("Employees also receive a free gym membership and dental cover.",)
    assert g.support_ratio == 0.5
    assert [m.chunk for m in matches] == [0]


@pytest.mark.slow
def test_with_the_real_embedding_model() -> None:
    from core.settings import EmbeddingSettings
    from ingest.encoding.embed import load_embedder

    emb = load_embedder(EmbeddingSettings())
    g, matches = check(
        "You get 75 EUR a day when travelling abroad [1]. Laptops that go missing have to be "
        "reported within an hour [2]. The company pays for your gym membership.",
        [PER_DIEM, LAPTOP],
        [0, 1],
        emb,
        min_match=0.5,
    )
    assert g.sentences == 3
    assert g.unsupported == ("The company pays for your gym membership.",)
    assert sorted(m.chunk for m in matches) == [0, 1]
