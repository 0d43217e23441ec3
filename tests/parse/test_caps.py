"""Issue 14, item 11: a small file that expands into huge text is skipped with a reason, by
three configurable caps: the unpacked size of an Office/ODF/EPUB archive (checked from its
directory, before any parser opens it), the extracted text, and the chunks per file."""

from __future__ import annotations

import io
import resource
import zipfile
from pathlib import Path

import pytest

from core.errors import IngestError
from core.settings import IngestSettings
from ingest.parsing.chunk import chunk_file

PARA = (
    "<w:p><w:r><w:t>The quarterly figures are attached; the totals are in the last column."
    "</w:t></w:r></w:p>"
)


def docx_with(path: Path, paragraphs: int, para: str = PARA) -> Path:
    """A DOCX whose body repeats one paragraph (deflate keeps it tiny on disk)."""
    from docx import Document

    buf = io.BytesIO()
    Document().save(buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                text = data.decode("utf-8")
                start = text.index("<w:body>") + len("<w:body>")
                data = (text[:start] + para * paragraphs + text[start:]).encode("utf-8")
            dst.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return path


def _skip_code(path: Path, settings: IngestSettings) -> IngestError:
    with pytest.raises(IngestError) as info:
        chunk_file(path, settings)
    return info.value


@pytest.mark.timeout(120)
def test_docx_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    """~100 KB on disk, ~50 MB of XML: refused from the zip directory with the defaults, without
    the parser's memory blow-up (the old code parsed it into tens of thousands of chunks)."""
    bomb = docx_with(tmp_path / "bomb.docx", 400_000)
    assert bomb.stat().st_size < 300_000
    assert chunk_file(docx_with(tmp_path / "small.docx", 20), IngestSettings())  # imports warm
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = _skip_code(bomb, IngestSettings())
    assert err.code == "ingest.too_much_text"
    assert "ingest.max_expansion_ratio" in err.message
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 100, grown_mb


def test_extracted_text_cap(tmp_path: Path) -> None:
    doc = docx_with(tmp_path / "long.docx", 3000)  # ~260 KB of text, not a bomb
    settings = IngestSettings(max_text_mb=0.1)
    err = _skip_code(doc, settings)
    assert err.code == "ingest.too_much_text" and "ingest.max_text_mb" in err.message
    assert chunk_file(doc, IngestSettings())  # the defaults read it


def test_chunk_cap(tmp_path: Path) -> None:
    md = tmp_path / "sections.md"
    md.write_text(
        "".join(f"# Section {i}\n\n{'Text of the section. ' * 70}\n\n" for i in range(60))
    )
    err = _skip_code(md, IngestSettings(max_chunks_per_file=20))
    assert err.code == "ingest.too_much_text" and "ingest.max_chunks_per_file" in err.message
    assert len(chunk_file(md, IngestSettings())) >= 60


def test_big_plain_text_stops_reading_at_the_cap(tmp_path: Path) -> None:
    big = tmp_path / "log.txt"
    big.write_text("A line of a very long log file that nobody should index.\n" * 40_000)
    err = _skip_code(big, IngestSettings(max_text_mb=0.5))
    assert err.code == "ingest.too_much_text" and "ingest.max_text_mb" in err.message


def test_unpacked_size_cap(tmp_path: Path) -> None:
    doc = docx_with(tmp_path / "big.docx", 3000)  # ~350 KB of XML, ratio well under the cap
    err = _skip_code(doc, IngestSettings(max_unpacked_mb=0.2))
    assert err.code == "ingest.too_much_text" and "ingest.max_unpacked_mb" in err.message
