"""The extractive answerer: verbatim quotes, honest citations, abstention from evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.answerers.base import ABSTAIN_MESSAGE, Answerer, Draft
from assistant.answerers.extractive import ExtractiveAnswerer
from assistant.evidence import Tuning, content_terms
from assistant.types import RetrievedChunk
from core.settings import IngestSettings
from ingest.parsing.chunk import chunk_file
from tests.assistant.fakes import BagOfWordsEmbedder, chunk

TRAVEL = chunk(
    1,
    "Travel — Per diem\nBook trains through the travel desk. The per diem abroad is 75 EUR "
    "per day. Receipts are not needed for the per diem.\n\nYou can also claim:\n- taxis "
    "after 10 pm\n- one checked bag",
    path="finance/travel.md",
    title="Travel",
)
RATES = chunk(
    2,
    "Travel — Rates\nCity | Per diem | Currency\nBerlin | 75 | EUR\nOslo | 900 | NOK",
    path="finance/rates.md",
    title="Travel",
)
LAPTOP = chunk(
    3,
    "IT — Devices\nA lost laptop must be reported to the service desk within one hour. "
    "This lets security wipe it remotely.",
    path="it/devices.md",
    title="IT",
)


def run(question: str, chunks: list[RetrievedChunk], **tuning: Any) -> tuple[str, Draft]:
    answerer = ExtractiveAnswerer(BagOfWordsEmbedder(), Tuning(**tuning))
    shown = ""
    for item in answerer.answer(question, chunks):
        if isinstance(item, Draft):
            return shown, item
        shown += item
    raise AssertionError("no draft")


def test_is_an_answerer() -> None:
    assert isinstance(ExtractiveAnswerer(BagOfWordsEmbedder()), Answerer)


def test_quotes_the_sentence_verbatim_and_cites_only_its_source() -> None:
    shown, draft = run("how much is the per diem when I travel abroad?", [LAPTOP, TRAVEL])
    assert not draft.abstained and shown == draft.text
    assert "“The per diem abroad is 75 EUR per day." in draft.text
    assert draft.text.endswith("[1]")
    assert [c.path for c in draft.citations] == ["finance/travel.md"]
    cite = draft.citations[0]
    assert cite.text == TRAVEL.text
    assert [TRAVEL.text[a:b] for a, b in cite.highlights] == [
        "The per diem abroad is 75 EUR per day."
    ] or all(TRAVEL.text[a:b] in draft.text for a, b in cite.highlights)
    # every quoted word is in the cited chunk
    for a, b in cite.highlights:
        assert TRAVEL.text[a:b] in cite.snippet
    assert [s.path for s in draft.also_retrieved] == ["it/devices.md"]
    assert draft.grounding is not None and draft.grounding.support_ratio == 1.0


def test_a_list_item_comes_with_its_lead_in() -> None:
    _, draft = run("can I expense a taxi late at night after 10 pm?", [TRAVEL])
    quote = draft.citations[0].snippet
    assert "You can also claim:" in quote and "- taxis after 10 pm" in quote


def test_a_table_row_comes_with_its_header() -> None:
    _, draft = run("what is the per diem in Oslo in NOK?", [RATES])
    quote = draft.citations[0].snippet
    assert "City | Per diem | Currency" in quote and "Oslo | 900 | NOK" in quote


def test_a_sentence_that_refers_back_brings_the_one_before() -> None:
    _, draft = run("why can security wipe it remotely?", [LAPTOP])
    quote = draft.citations[0].snippet
    assert quote.startswith("A lost laptop must be reported") and "wipe it remotely" in quote


def test_no_support_means_abstaining_with_the_closest_documents() -> None:
    shown, draft = run("what is the dental plan deductible?", [TRAVEL, LAPTOP], min_support=0.3)
    assert draft.abstained and draft.text == ABSTAIN_MESSAGE == shown
    assert draft.citations == []
    assert [s.path for s in draft.also_retrieved] == ["finance/travel.md", "it/devices.md"]
    assert draft.reason_code == "answer.no_support" and draft.support < 0.3


def test_nothing_retrieved_abstains() -> None:
    _, draft = run("anything?", [])
    assert draft.abstained and draft.citations == [] and draft.also_retrieved == []


def test_conversational_filler_is_not_content() -> None:
    assert content_terms("hey, quick question: do I really need a receipt for my taxi?") == [
        "receipt",
        "taxi",
    ]


def test_unit_vectors_are_cached_per_chunk() -> None:
    emb = BagOfWordsEmbedder()
    answerer = ExtractiveAnswerer(emb)
    list(answerer.answer("per diem abroad", [TRAVEL, RATES]))
    first = emb.calls
    list(answerer.answer("receipts for the per diem", [TRAVEL, RATES]))
    assert emb.calls == first  # the second question re-used both chunks' unit vectors


def test_the_frame_names_the_document_and_its_most_specific_heading() -> None:
    from dataclasses import replace

    from assistant.answerers.extractive import where

    c = replace(TRAVEL, title="Acme - Leave Policy", section="Leave Policy > Annual leave")
    assert where(c) == "Acme - Leave Policy (Annual leave)"
    assert where(replace(c, section="Leave Policy")) == "Acme - Leave Policy"
    assert where(replace(c, title="paid parental leave", section=None)) == "Paid parental leave"


def test_a_sentence_two_chunks_share_is_quoted_once() -> None:
    """Overlapping chunks (or a page repeating a paragraph) hold the same sentence: the answer
    quotes it once and moves on to the next distinct one."""
    overlap = chunk(
        4,
        "Travel — Per diem\nThe per diem abroad is 75 EUR per day. Receipts are not needed "
        "for the per diem.",
        path="finance/travel-copy.md",
        title="Travel copy",
    )
    _, draft = run("how much is the per diem abroad per day?", [TRAVEL, overlap])
    assert draft.text.count("The per diem abroad is 75 EUR per day.") == 1


def test_html_in_titles_is_shown_as_text() -> None:
    from dataclasses import replace

    from assistant.answerers.extractive import where

    c = replace(TRAVEL, title="Logging in &amp; Networks", section="Q&amp;A")
    assert where(c) == "Logging in & Networks (Q&A)"
    c = replace(TRAVEL, title="Set up travel <em>before</em> onboarding", section=None)
    assert where(c) == "Set up travel before onboarding"


def test_units_of_all_new_chunks_are_embedded_in_one_call() -> None:
    emb = BagOfWordsEmbedder()
    answerer = ExtractiveAnswerer(emb)
    before = emb.calls
    list(answerer.answer("per diem abroad", [TRAVEL, RATES, LAPTOP]))
    assert emb.calls - before == 1  # one batch for the three chunks' units


def test_a_markdown_list_is_quoted_with_its_lead_in(tmp_path: Path) -> None:
    """Markdown -> parser -> chunker -> answer: the steps come with the line announcing them
    (before, the answer was the lead-in alone: "… do the following as quickly as possible:")."""
    page = tmp_path / "equipment.md"
    page.write_text(
        "# Equipment\n\n## Lost or stolen equipment\n\nFor lost work laptops and phones, do the "
        "following as quickly as possible:\n\n1. Report the theft to the IT service desk.\n"
        "1. Inform your team.\n   - Your access may be removed for a while.\n"
        "1. Tell the equipment channel.\n\nA returned device is wiped before it is used again.\n"
    )
    [only] = chunk_file(page, IngestSettings())
    _, draft = run("I lost my work laptop, what do I do?", [chunk(1, only.text)], min_support=0)
    quote = draft.citations[0].snippet
    assert "do the following as quickly as possible:" in quote
    assert "1. Report the theft to the IT service desk." in quote
    assert "3. Tell the equipment channel." in quote
