"""Every sample format parses into structured chunks: sections, pages, tables, e-mail headers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.settings import IngestSettings
from ingest.parsing.chunk import Chunk, chunk_file
from samples.generate import FACTS, generate


def _chunks(root: Path, rel: str, settings: IngestSettings) -> list[Chunk]:
    chunks = chunk_file(root / rel, settings)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert all(c.text.strip() for c in chunks)
    return chunks


def _find(chunks: list[Chunk], needle: str) -> Chunk:
    hits = [c for c in chunks if needle.casefold() in c.text.casefold()]
    assert hits, f"{needle!r} not in any chunk: {[c.text[:80] for c in chunks]}"
    return hits[0]


def test_pdf_keeps_pages_and_bookmark_sections(
    samples_dir: Path, ingest_settings: IngestSettings
) -> None:
    chunks = _chunks(samples_dir, "general/leave-and-time-off.pdf", ingest_settings)
    assert {c.title for c in chunks} == {"Norrbrook Instruments - Leave and Time Off Policy"}
    annual = _find(chunks, "27 days of paid annual leave")
    assert annual.page == 1
    assert annual.section == "Leave and Time Off Policy > Annual leave"
    # The context line names the document and the section (document title said once).
    assert annual.text.splitlines()[0] == (
        "Norrbrook Instruments - Leave and Time Off Policy — Annual leave"
    )
    sick = _find(chunks, "doctor's note")
    assert (sick.page, sick.section.split(" > ")[-1]) == (2, "Sick leave")
    questions = _find(chunks, "Sofia Marsh")
    assert questions.page == 3
    # pdfminer returns one element per line; lines are glued back into sentences.
    assert "Carried-over days must be taken by 31 March" in annual.text


def test_pdf_nested_sections(samples_dir: Path, ingest_settings: IngestSettings) -> None:
    chunks = _chunks(samples_dir, "general/travel-and-expenses.pdf", ingest_settings)
    hotels = _find(chunks, "240 EUR per night")
    assert hotels.section == "Travel and Expenses Policy > Travel > Hotels"
    assert hotels.page == 1
    assert _find(chunks, "75 EUR for international").page == 2


def test_docx_headings_lists_and_tables(samples_dir: Path, ingest_settings: IngestSettings) -> None:
    chunks = _chunks(samples_dir, "general/performance-reviews.docx", ingest_settings)
    assert chunks[0].title == "Performance Reviews at Norrbrook"
    scale = _find(chunks, "Below expectations")
    assert scale.section.endswith("Rating scale")
    # Table rows are kept together and rendered cell | cell.
    assert "1 | Below expectations | Goals were mostly missed" in scale.text
    assert "5 | Exceptional | Outstanding results across the board" in scale.text
    assert "- Self-assessment opens in Tidewell on 1 October" in _find(chunks, "20 October").text
    assert _find(chunks, "60 days").section.endswith("Performance improvement plans")


def test_pptx_slide_number_is_the_page(samples_dir: Path, ingest_settings: IngestSettings) -> None:
    chunks = _chunks(samples_dir, "engineering/release-process.pptx", ingest_settings)
    by_section = {c.section: c for c in chunks}
    assert by_section["Release train"].page == 2
    assert "Code freeze is on Monday at 12:00" in by_section["Release train"].text
    assert by_section["Rollback"].page == 5
    assert [c.page for c in chunks] == sorted(c.page or 0 for c in chunks)


def test_xlsx_sheet_is_the_section(samples_dir: Path, ingest_settings: IngestSettings) -> None:
    chunks = _chunks(samples_dir, "hr/confidential/salary-bands-2026.xlsx", ingest_settings)
    assert [c.section for c in chunks] == ["Engineering", "Sales", "Notes"]
    assert chunks[0].title == "Salary Bands 2026 (Confidential)"
    assert "E5 | Principal Engineer | 90,000 | 101,000 | 112,000" in chunks[0].text
    assert all(c.page is None for c in chunks)


def test_html_and_markdown_sections(samples_dir: Path, ingest_settings: IngestSettings) -> None:
    html = _chunks(samples_dir, "it/device-loss-and-incident-reporting.html", ingest_settings)
    sev = _find(html, "SEV1")
    assert sev.section.endswith("Severity levels")
    assert "SEV1 | Active attack or customer data breach" in sev.text
    md = _chunks(samples_dir, "engineering/on-call-handbook.md", ingest_settings)
    assert [c.section for c in md] == [
        "On-call Handbook > Rotation",
        "On-call Handbook > Responding to pages",
        "On-call Handbook > Allowance",
        "On-call Handbook > Handover",
    ]
    assert md[2].text.startswith("On-call Handbook — Allowance\n")


def test_eml_headers_and_attachment_names(
    samples_dir: Path, ingest_settings: IngestSettings
) -> None:
    chunks = _chunks(samples_dir, "general/office-closure-notice.eml", ingest_settings)
    text = "\n".join(c.text for c in chunks)
    assert chunks[0].title == "Tromsvik office closed on 6 March for heating maintenance"
    assert "From: Facilities Team <facilities@norrbrook.example>" in text
    assert "Attachments: floor-plan-bergvik.txt" in text
    # The attachment is listed, not indexed.
    assert "30 hot desks" not in text
    assert "Friday 6 March 2026" in text


def test_every_fact_is_in_its_file(samples_dir: Path, ingest_settings: IngestSettings) -> None:
    facts = yaml.safe_load(FACTS.read_text())["facts"]
    assert len(facts) >= 20
    for fact in facts:
        chunks = _chunks(samples_dir, fact["file"], ingest_settings)
        hit = _find(chunks, fact["answer"])
        if "section" in fact:
            # Its own section, or a tiny section merged into a neighbour under its heading line.
            own = hit.section.split(" > ")[-1] == fact["section"]
            merged = f"\n{fact['section']}\n" in hit.text
            assert own or merged, (fact, hit)
        if "page" in fact:
            assert hit.page == fact["page"], fact


def test_generation_is_deterministic(samples_dir: Path, tmp_path: Path) -> None:
    again = generate(tmp_path)
    assert len(again) == 17
    for path in again:
        rel = path.relative_to(tmp_path)
        assert path.read_bytes() == (samples_dir / rel).read_bytes(), rel


@pytest.mark.parametrize(
    "folder", ["hr", "hr/confidential", "it", "finance", "engineering", "general"]
)
def test_every_folder_has_documents(samples_dir: Path, folder: str) -> None:
    assert any(p.is_file() for p in (samples_dir / folder).iterdir())
