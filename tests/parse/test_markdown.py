"""Markdown through the CommonMark parser: the structure the author wrote, without unstructured."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import IngestSettings
from ingest.parsing import parse as parse_module
from ingest.parsing.blocks import Block
from ingest.parsing.chunk import chunk_file
from ingest.parsing.mdblocks import markdown_blocks
from ingest.parsing.parse import parse_file


def _texts(markdown: str) -> list[tuple[str, int | None, str]]:
    return [(b.kind, b.level, b.text) for b in markdown_blocks(markdown)]


def test_headings_carry_their_level_and_paragraphs_join_their_lines() -> None:
    md = (
        "# Travel\n\nBook trains through the\n*travel desk* before `Friday`.\n\n"
        "Per diem\n--------\n\nMeals are paid  per day.  \nReceipts are not needed.\n\n"
        "### Hotels\n\nStay near the office.\n"
    )
    assert _texts(md) == [
        ("heading", 0, "Travel"),
        ("text", None, "Book trains through the travel desk before Friday."),
        ("heading", 1, "Per diem"),
        ("text", None, "Meals are paid per day.\nReceipts are not needed."),
        ("heading", 2, "Hotels"),
        ("text", None, "Stay near the office."),
    ]


def test_lists_keep_one_block_per_item_with_numbers_and_nesting() -> None:
    md = (
        "Steps:\n\n3. Open the portal\n4. Choose **Leave**\n   - annual\n   - sick\n"
        "5. Submit\n\n- loose item\n\n  second paragraph of it\n"
    )
    assert [b.text for b in markdown_blocks(md)] == [
        "Steps:",
        "3. Open the portal",
        "4. Choose Leave",
        "  - annual",
        "  - sick",
        "5. Submit",
        "- loose item",
        "second paragraph of it",
    ]


def test_a_list_item_that_starts_with_a_hash_is_not_a_heading() -> None:
    """unstructured read ``- #benefits`` (a Slack channel) as a top-level title."""
    assert _texts("Channels:\n\n- #benefits\n- #travel\n") == [
        ("text", None, "Channels:"),
        ("text", None, "- #benefits"),
        ("text", None, "- #travel"),
    ]


def test_tables_keep_their_cells_and_chunk_as_rows(tmp_path: Path) -> None:
    md = "# Rates\n\n| City | Per diem |\n|---|---|\n| Denver | $79 |\n| *Austin* | $69 |\n"
    [heading, table] = markdown_blocks(md)
    assert heading == Block("heading", "Rates", level=0)
    assert table.kind == "table"
    assert table.rows == (("City", "Per diem"), ("Denver", "$79"), ("Austin", "$69"))
    page = tmp_path / "rates.md"
    page.write_text(md)
    [chunk] = chunk_file(page, IngestSettings())
    assert chunk.text.split("\n")[1:] == ["City | Per diem", "Denver | $79", "Austin | $69"]


def test_links_keep_their_text_and_images_their_alt_text() -> None:
    md = (
        "Read the [leave policy](https://intranet.example/leave) and "
        "![a map of floor 3](map.png).\n"
    )
    assert _texts(md) == [("text", None, "Read the leave policy and a map of floor 3.")]


@pytest.mark.parametrize(
    "target",
    ['{% page "/assignee-detail" %}', "{{ site.baseurl }}/assignee-detail/", "{{site.baseurl}}"],
)
def test_a_link_whose_target_is_a_template_tag_is_still_a_link(target: str) -> None:
    """CommonMark allows no spaces in a link target, so Jekyll's tag left ``[text](…)``."""
    md = f"Details run as [internal\ncompetitions]({target}), like the others.\n"
    assert _texts(md) == [("text", None, "Details run as internal competitions, like the others.")]


def test_template_tags_outside_link_targets_stay_as_written() -> None:
    md = 'Ask in {% slack_channel "benefits" %}.\n\n```liquid\n{% include "x.html" %}\n```\n'
    assert [b.text for b in markdown_blocks(md)] == [
        'Ask in {% slack_channel "benefits" %}.',
        '{% include "x.html" %}',
    ]


def test_code_blocks_keep_their_lines() -> None:
    md = "Run:\n\n```sh\nmake venv\nmake run\n```\n\n    indented code\n    second line\n"
    assert [b.text for b in markdown_blocks(md)] == [
        "Run:",
        "make venv\nmake run",
        "indented code\nsecond line",
    ]


def test_html_blocks_keep_their_text_and_drop_scripts() -> None:
    md = (
        "<details>\n<summary>Records rules</summary>\n\n"
        "Chat messages are **records**.\n\n</details>\n\n"
        '<div class="note">\n<p>Keep receipts</p><img src="x.png" alt="receipt example">\n'
        "<script>alert('x')</script>\n</div>\n"
    )
    assert [b.text for b in markdown_blocks(md)] == [
        "Records rules",
        "Chat messages are records.",
        "Keep receipts\nreceipt example",
    ]


def test_markdown_files_are_not_partitioned_by_unstructured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """unstructured classified every paragraph with spaCy: two thirds of a handbook's parse."""

    def no_unstructured(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("Markdown went through unstructured")

    monkeypatch.setattr(parse_module, "_partition", no_unstructured)
    page = tmp_path / "leave.md"
    page.write_text("---\ntitle: Leave types\n---\n\n## Sick leave\n\nA note from day 5.\n")
    doc = parse_file(page, IngestSettings())
    assert doc.title == "Leave types"
    assert [(b.kind, b.text) for b in doc.blocks] == [
        ("heading", "Sick leave"),
        ("text", "A note from day 5."),
    ]
    bare = tmp_path / "notes.md"
    bare.write_text("# Parking\n\nBadge at gate B.\n")
    assert parse_file(bare, IngestSettings()).title == "Parking"


def test_a_list_item_that_opens_with_code_carries_its_marker_there() -> None:
    md = "1. ```\n   make run\n   ```\n\n   Then open the browser.\n2. Sign in\n"
    assert [b.text for b in markdown_blocks(md)] == [
        "1. make run",
        "Then open the browser.",
        "2. Sign in",
    ]


@pytest.mark.parametrize("depth", [12, 30])
def test_deeply_nested_lists_lose_no_text(depth: int) -> None:
    """markdown-it stops reading a document where it nests deeper than its limit; the text
    after it (here a paragraph and a section) must still be there."""
    md = "".join("  " * i + f"- level {i}\n" for i in range(depth))
    md += "\nAfter the list.\n\n# Next\n\nMore text.\n"
    blocks = markdown_blocks(md)
    text = "\n".join(b.text for b in blocks)
    assert all(f"level {i}" in text for i in range(depth))
    assert blocks[-3:] == [
        Block("text", "After the list."),
        Block("heading", "Next", level=0),
        Block("text", "More text."),
    ]
    quotes = markdown_blocks("> " * 500 + "deep quote\n")
    assert quotes and quotes[0].text.endswith("deep quote")
