"""Markdown front matter: read as the page's title and keywords, never indexed as body text."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import EmptyDocumentError
from core.settings import IngestSettings
from ingest.parsing.blocks import Block, ParsedDocument
from ingest.parsing.chunk import chunk_document, chunk_file
from ingest.parsing.frontmatter import FrontMatter, split_front_matter

PAGE = """---
title: Leave types
keywords: vacation, funeral, jury duty, Vacation
redirect_from:
  - /leave/
sidebar:
  navigation: leave
---

## Annual leave

You may use annual leave for any reason. It accrues every pay period.

## Court leave

Jury duty is paid as court leave; bring the summons to your supervisor.
"""


def test_title_keywords_and_body_are_separated() -> None:
    front, body = split_front_matter(PAGE)
    assert front == FrontMatter(title="Leave types", keywords=("vacation", "funeral", "jury duty"))
    assert body.lstrip().startswith("## Annual leave")
    assert "redirect_from" not in body


def test_list_keywords_tags_and_description() -> None:
    front, _ = split_front_matter(
        "---\ntitle: 42\ntags: [travel, per diem]\nsubtitle: How to book\n---\nBody\n"
    )
    assert front == FrontMatter(
        title="42", description="How to book", keywords=("travel", "per diem")
    )


def test_text_that_only_looks_like_front_matter_is_kept() -> None:
    rule_first = "---\nJust a horizontal rule and a sentence.\n\nMore text.\n"
    unterminated = "---\ntitle: Draft\n\nno closing line\n"
    not_a_mapping = "---\n- a\n- b\n---\nBody\n"
    broken_yaml = "---\ntitle: [unclosed\n---\nBody\n"
    for text in (rule_first, unterminated, not_a_mapping, broken_yaml, "No front matter."):
        assert split_front_matter(text) == (FrontMatter(), text)


def test_markdown_file_front_matter_becomes_title_not_text(tmp_path: Path) -> None:
    """Before: the block was the first chunk's text and the title was the file name."""
    page = tmp_path / "leave.md"
    page.write_text(PAGE)
    chunks = chunk_file(page, IngestSettings())
    assert {c.title for c in chunks} == {"Leave types"}
    assert all("redirect_from" not in c.text and "navigation" not in c.text for c in chunks)
    assert all(c.text.startswith("Leave types") for c in chunks)
    assert all(c.text.split("\n")[1] == "Keywords: vacation, funeral, jury duty" for c in chunks)
    assert any("bring the summons" in c.text for c in chunks)


def test_front_matter_off_keeps_the_old_behaviour(tmp_path: Path) -> None:
    page = tmp_path / "leave.md"
    page.write_text(PAGE)
    chunks = chunk_file(page, IngestSettings(front_matter=False))
    assert chunks[0].title == "leave"
    assert "redirect_from" in chunks[0].text


def test_keyword_line_is_optional_and_counts_against_the_chunk_size() -> None:
    doc = ParsedDocument(
        kind="md",
        title="Travel",
        blocks=[
            Block("heading", "Per diem", level=1),
            *(
                Block("text", f"Sentence number {i} about meals and lodging rates.")
                for i in range(80)
            ),
        ],
        keywords=("per diem", "meals"),
    )
    with_line = chunk_document(doc, max_chars=600, overlap=50)
    without = chunk_document(doc, max_chars=600, overlap=50, keywords=False)
    assert all(c.text.split("\n")[1] == "Keywords: per diem, meals" for c in with_line)
    assert not any("Keywords:" in c.text for c in without)
    assert all(len(c.text) <= 600 for c in with_line)
    assert len(with_line) > len(without)


def test_a_redirect_stub_keeps_its_pointer(tmp_path: Path) -> None:
    """A page made only of front matter (a moved page) is indexed as its title and target,
    not skipped as empty; a page with nothing but a title still is empty."""
    stub = tmp_path / "open-source.md"
    stub.write_text(
        "---\ntitle: Open source policy\nredirect_to: https://example.org/policy.md\n"
        "redirect_from:\n  - /open-source/\n---\n"
    )
    (chunk,) = chunk_file(stub, IngestSettings())
    assert chunk.title == "Open source policy"
    assert "Moved to: https://example.org/policy.md" in chunk.text
    assert "redirect_from" not in chunk.text
    bare = tmp_path / "bare.md"
    bare.write_text("---\ntitle: Nothing here\n---\n\n")
    with pytest.raises(EmptyDocumentError):
        chunk_file(bare, IngestSettings())
