"""Legacy Office files (.doc, .xls, .ppt) are converted by LibreOffice headless and parsed.

The legacy files are made here: documents written with python-docx / openpyxl / python-pptx,
then saved in the 97-2003 formats by LibreOffice itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from core.errors import ParseFailedError
from core.settings import IngestSettings
from ingest.parsing.chunk import chunk_file
from ingest.parsing.parse import parse_file

HAVE_SOFFICE = shutil.which("soffice") is not None
if not HAVE_SOFFICE and os.environ.get("CI"):
    pytest.fail("LibreOffice (soffice) is missing in CI: .ci/run installs it", pytrace=False)
pytestmark = pytest.mark.skipif(not HAVE_SOFFICE, reason="LibreOffice is not installed")


def _save_as(src: Path, fmt: str, out: Path) -> Path:
    profile = out / "profile"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            fmt,
            "--outdir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    result = out / f"{src.stem}.{fmt.split(':')[0]}"
    assert result.exists(), f"LibreOffice did not write {result}"
    return result


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import docx
    import openpyxl
    import pptx

    d = tmp_path_factory.mktemp("legacy")
    doc = docx.Document()
    doc.add_heading("Travel policy", level=1)
    doc.add_paragraph("Trains are preferred over flights for trips under five hours.")
    doc.save(d / "travel.docx")
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Budgets"
    ws.append(["Department", "Budget"])
    ws.append(["Research", "420000"])
    wb.save(d / "budgets.xlsx")
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text = "Revenue grew by eleven percent in the third quarter."
    deck.save(d / "results.pptx")
    return {
        "doc": _save_as(d / "travel.docx", "doc", d),
        "xls": _save_as(d / "budgets.xlsx", "xls", d),
        "ppt": _save_as(d / "results.pptx", "ppt", d),
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("doc", "Trains are preferred over flights"),
        ("xls", "420000"),
        ("ppt", "Revenue grew by eleven percent"),
    ],
)
def test_legacy_office_is_converted_and_parsed(
    legacy: dict[str, Path], kind: str, expected: str
) -> None:
    path = legacy[kind]
    assert path.read_bytes()[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a real OLE file
    parsed = parse_file(path, IngestSettings())
    assert parsed.kind == kind
    text = " ".join(b.text for b in parsed.blocks) + " ".join(
        " ".join(cell for row in b.rows for cell in row) for b in parsed.blocks
    )
    assert expected in text
    chunks = chunk_file(path, IngestSettings())
    assert any(expected in c.text for c in chunks)


def test_conversion_timeout_stops_libreoffice(legacy: dict[str, Path]) -> None:
    settings = IngestSettings(convert_timeout_s=0.05)
    started = time.monotonic()
    with pytest.raises(ParseFailedError) as err:
        parse_file(legacy["doc"], settings)
    assert err.value.code == "ingest.convert_timeout"
    assert "convert_timeout_s" in err.value.message
    assert time.monotonic() - started < 30


def test_conversion_ends_before_the_parse_timeout(legacy: dict[str, Path]) -> None:
    """A parse timeout below the conversion timeout caps the conversion (the worker is killed
    at the parse timeout; LibreOffice must be stopped before that, as a process group)."""
    settings = IngestSettings(convert_timeout_s=120, parse_timeout_s=0.1)
    with pytest.raises(ParseFailedError) as err:
        parse_file(legacy["ppt"], settings)
    assert err.value.code == "ingest.convert_timeout"
