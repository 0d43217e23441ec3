"""Chunking rules on hand-made documents: sizes, word boundaries, overlap, tables, sections."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from core.settings import IngestSettings
from ingest.parsing.blocks import Block, ParsedDocument
from ingest.parsing.chunk import chunk_document, chunk_file, split_words
from ingest.parsing.textfast import FAST_TEXT_BYTES

WORDS = [
    *("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"),
    *("juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"),
    *("sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"),
]


def _prose(n_words: int, seed: int = 0) -> str:
    words = [WORDS[(i * 7 + seed) % len(WORDS)] + str(i) for i in range(n_words)]
    sentences = [" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, n_words, 12)]
    return " ".join(sentences)


def _doc(*blocks: Block, title: str = "Handbook", kind: str = "docx") -> ParsedDocument:
    return ParsedDocument(kind=kind, title=title, blocks=list(blocks))


def test_split_words_never_cuts_inside_a_word() -> None:
    text = _prose(400)
    vocabulary = set(text.split())
    pieces = split_words(text, 200)
    assert len(pieces) > 5
    assert all(len(p) <= 200 for p in pieces)
    for piece in pieces:
        assert set(piece.split()) <= vocabulary
    assert " ".join(pieces).split() == text.split()


def test_split_words_prefers_sentence_ends() -> None:
    pieces = split_words(_prose(400), 300)
    assert sum(p.endswith(".") for p in pieces[:-1]) == len(pieces) - 1


def test_long_section_is_split_with_overlap_and_context() -> None:
    body = _prose(600)
    doc = _doc(
        Block("heading", "Expenses", level=0),
        Block("heading", "Travel", level=1),
        Block("text", body, page=3),
    )
    chunks = chunk_document(doc, max_chars=500, overlap=80)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.text) <= 500
        assert chunk.section == "Expenses > Travel"
        assert chunk.page == 3
        assert chunk.text.startswith("Handbook — Expenses > Travel\n")
    bodies = [c.text.split("\n", 1)[1] for c in chunks]
    for previous, current in itertools.pairwise(bodies):
        first_line = current.split("\n", 1)[0]
        # The overlap is the previous piece's tail, starting on a word boundary.
        assert previous.endswith(first_line), (previous[-100:], first_line)
        assert 0 < len(first_line) <= 80


def test_no_overlap_when_a_section_fits() -> None:
    doc = _doc(
        Block("heading", "Leave", level=0),
        Block("text", _prose(60, 1)),
        Block("heading", "Sick leave", level=0),
        Block("text", _prose(60, 2)),
    )
    chunks = chunk_document(doc, max_chars=1200, overlap=150)
    assert [c.section for c in chunks] == ["Leave", "Sick leave"]
    assert chunks[1].text.split("\n", 1)[1] == _prose(60, 2)


def test_heading_path_pops_to_the_right_level() -> None:
    doc = _doc(
        Block("heading", "Expenses", level=0),
        Block("heading", "Travel", level=1),
        Block("heading", "Hotels", level=2),
        Block("text", _prose(40, 1)),
        Block("heading", "Per diem", level=1),
        Block("text", _prose(40, 2)),
        Block("heading", "Security", level=0),
        Block("text", _prose(40, 3)),
    )
    chunks = chunk_document(doc, max_chars=1200, overlap=0)
    assert [c.section for c in chunks] == [
        "Expenses > Travel > Hotels",
        "Expenses > Per diem",
        "Security",
    ]


def test_table_kept_whole_when_it_fits_else_split_by_rows_with_header() -> None:
    bands = tuple((f"E{i}", f"{40 + i},000", f"{50 + i},000") for i in range(1, 7))
    rows = (("Level", "Minimum", "Maximum"), *bands)
    small = _doc(Block("text", _prose(30)), Block("table", "", page=2, rows=rows))
    chunks = chunk_document(small, max_chars=1200, overlap=100)
    assert len(chunks) == 1
    assert "E6 | 46,000 | 56,000" in chunks[0].text

    many = tuple((f"R{i}", f"value {i}", "x" * 30) for i in range(80))
    big = _doc(Block("table", "", page=4, rows=(("Key", "Value", "Note"), *many)))
    chunks = chunk_document(big, max_chars=400, overlap=100)
    assert len(chunks) > 3
    seen = []
    for chunk in chunks:
        assert len(chunk.text) <= 400
        lines = chunk.text.split("\n")
        assert lines[1] == "Key | Value | Note"
        seen += [line.split(" | ")[0] for line in lines[2:]]
        assert chunk.page == 4
    assert seen == [f"R{i}" for i in range(80)]


def test_page_is_the_first_blocks_page() -> None:
    doc = _doc(
        Block("heading", "Policy", level=0, page=1),
        Block("text", "Short intro on page one.", page=1),
        Block("text", "A paragraph that starts on page two.", page=2),
    )
    [chunk] = chunk_document(doc, max_chars=1200, overlap=0)
    assert chunk.page == 1


def test_tiny_sections_merge_under_their_common_heading() -> None:
    doc = _doc(
        Block("heading", "Office life", level=0),
        Block("heading", "Breakfast", level=1),
        Block("text", "Friday breakfast from 08:00."),
        Block("heading", "Bicycles", level=1),
        Block("text", "Park bicycles on level -1."),
    )
    [chunk] = chunk_document(doc, max_chars=1200, overlap=0)
    assert chunk.section == "Office life"
    assert chunk.text == (
        "Handbook — Office life\nBreakfast\nFriday breakfast from 08:00.\n\n"
        "Bicycles\nPark bicycles on level -1."
    )


def test_slides_are_never_merged() -> None:
    doc = _doc(
        Block("heading", "Deck", level=0, page=1),
        Block("text", "Intro", page=1),
        Block("heading", "Slide two", level=0, page=2),
        Block("text", "Tiny", page=2),
        kind="pptx",
        title="Deck",
    )
    chunks = chunk_document(doc, max_chars=1200, overlap=0)
    assert [(c.section, c.page) for c in chunks] == [("Deck", 1), ("Slide two", 2)]


def test_heading_only_document_keeps_its_text() -> None:
    doc = _doc(Block("heading", "A", level=None), Block("heading", "B", level=None))
    [chunk] = chunk_document(doc, max_chars=1200, overlap=0)
    assert "A" in chunk.text.split("\n")[1:] and "B" in chunk.text


def test_big_markdown_takes_the_streaming_path(tmp_path: Path) -> None:
    """A multi-MB Markdown file is chunked by its headings, fast (no unstructured)."""
    sections = []
    for i in range(300):
        sections.append(f"# Chapter {i}\n\n## Part {i}.1\n\n{_prose(150, i)}\n\n{_prose(80, i)}\n")
    target = tmp_path / "big.md"
    target.write_text("\n".join(sections))
    assert target.stat().st_size > FAST_TEXT_BYTES
    chunks = chunk_file(target, IngestSettings())
    assert {c.section for c in chunks} == {f"Chapter {i} > Part {i}.1" for i in range(300)}
    assert all(len(c.text) <= 1200 for c in chunks)
    # The first heading names the document; each chunk starts with title — section path.
    assert {c.title for c in chunks} == {"Chapter 0"}
    assert all(re.match(r"Chapter 0 — (Chapter \d+ > )?Part \d+\.1\n", c.text) for c in chunks)


def test_big_text_form_feed_starts_a_new_page(tmp_path: Path) -> None:
    pages = [f"Page {n} text. {_prose(12000, n)}" for n in range(1, 4)]
    target = tmp_path / "report.txt"
    target.write_text("\f".join(pages))
    assert target.stat().st_size > FAST_TEXT_BYTES
    chunks = chunk_file(target, IngestSettings())
    assert {c.page for c in chunks} == {1, 2, 3}
    assert next(c for c in chunks if "Page 2 text." in c.text).page == 2
