"""Bad input: every failure is one of the five IngestError kinds with a reason in plain words."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import (
    EmptyDocumentError,
    EncryptedFileError,
    FileTooLargeError,
    IngestError,
    ParseFailedError,
    UnsupportedFileError,
)
from core.settings import IngestSettings
from ingest.parsing.chunk import chunk_file

LEAVE_PDF = "general/leave-and-time-off.pdf"
REVIEWS_DOCX = "general/performance-reviews.docx"


def _raises(exc_type: type[IngestError], path: Path, settings: IngestSettings) -> IngestError:
    with pytest.raises(exc_type) as info:
        chunk_file(path, settings)
    assert info.value.message.strip()
    return info.value


def test_encrypted_pdf(samples_dir: Path, tmp_path: Path, ingest_settings: IngestSettings) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=samples_dir / LEAVE_PDF)
    writer.encrypt("s3cret-pw")
    target = tmp_path / "locked.pdf"
    writer.write(target)
    err = _raises(EncryptedFileError, target, ingest_settings)
    assert err.code == "ingest.encrypted"
    assert "password" in err.message


def test_owner_locked_pdf_with_empty_user_password_still_parses(
    samples_dir: Path, tmp_path: Path, ingest_settings: IngestSettings
) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=samples_dir / LEAVE_PDF)
    writer.encrypt(user_password="", owner_password="owner-only")
    target = tmp_path / "owner-locked.pdf"
    writer.write(target)
    chunks = chunk_file(target, ingest_settings)
    assert any("27 days" in c.text for c in chunks)


def test_encrypted_docx(samples_dir: Path, tmp_path: Path, ingest_settings: IngestSettings) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    target = tmp_path / "locked.docx"
    with (samples_dir / REVIEWS_DOCX).open("rb") as src, target.open("wb") as out:
        OOXMLFile(src).encrypt("s3cret-pw", out)
    err = _raises(EncryptedFileError, target, ingest_settings)
    assert "password-protected" in err.message


def test_encrypted_email(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    target = tmp_path / "secret.eml"
    target.write_text(
        "From: a@example.com\nTo: b@example.com\nSubject: s\nMIME-Version: 1.0\n"
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x\n\n'
        "--x\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--x\n"
        "Content-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\nabc\n--x--\n"
    )
    _raises(EncryptedFileError, target, ingest_settings)


def test_truncated_pdf(samples_dir: Path, tmp_path: Path, ingest_settings: IngestSettings) -> None:
    data = (samples_dir / LEAVE_PDF).read_bytes()
    target = tmp_path / "truncated.pdf"
    target.write_bytes(data[: len(data) // 3])
    err = _raises(ParseFailedError, target, ingest_settings)
    assert err.code == "ingest.parse_failed"
    assert "damaged" in err.message


def test_corrupt_docx(samples_dir: Path, tmp_path: Path, ingest_settings: IngestSettings) -> None:
    data = (samples_dir / REVIEWS_DOCX).read_bytes()
    target = tmp_path / "cut.docx"
    target.write_bytes(data[: len(data) // 2])
    err = _raises(ParseFailedError, target, ingest_settings)
    assert "ZIP" in err.message


def test_unsupported_binary(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    target = tmp_path / "firmware.bin"
    target.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8)
    err = _raises(UnsupportedFileError, target, ingest_settings)
    assert err.code == "ingest.unsupported"


def test_binary_named_txt_is_unsupported(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    """The type comes from the bytes: a .txt name does not make binary data text."""
    target = tmp_path / "notes.txt"
    target.write_bytes(b"\x00\x01\x02\x03\xff\xfe\x00\x00" * 64 + bytes(range(256)))
    err = _raises(UnsupportedFileError, target, ingest_settings)
    assert "binary" in err.message


def test_pdf_named_docx_is_read_as_pdf(
    samples_dir: Path, tmp_path: Path, ingest_settings: IngestSettings
) -> None:
    target = tmp_path / "really-a-pdf.docx"
    shutil.copy(samples_dir / LEAVE_PDF, target)
    chunks = chunk_file(target, ingest_settings)
    assert chunks[0].page == 1


def test_image_without_ocr_is_unsupported(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    from PIL import Image

    target = tmp_path / "scan.png"
    Image.new("RGB", (64, 64), "white").save(target)
    no_ocr = ingest_settings.model_copy(update={"ocr": False})
    err = _raises(UnsupportedFileError, target, no_ocr)
    assert "ocr" in err.message.lower()


def test_too_large(samples_dir: Path, ingest_settings: IngestSettings) -> None:
    small = ingest_settings.model_copy(update={"max_file_mb": 0.001})
    err = _raises(FileTooLargeError, samples_dir / LEAVE_PDF, small)
    assert err.code == "ingest.too_large"
    assert "max_file_mb" in err.message


def test_empty_and_blank_files(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert _raises(EmptyDocumentError, empty, ingest_settings).code == "ingest.empty"
    blank = tmp_path / "blank.md"
    blank.write_text("   \n\n\t\n")
    _raises(EmptyDocumentError, blank, ingest_settings)


def test_missing_file(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    _raises(ParseFailedError, tmp_path / "gone.pdf", ingest_settings)


def _scanned_pdf(tmp_path: Path) -> Path:
    """A PDF whose only content is a picture of text (no text layer)."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1400, 400), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=64)
    draw.text((40, 60), "Badge renewal is due", fill=0, font=font)
    draw.text((40, 200), "every 24 months", fill=0, font=font)
    png = tmp_path / "scan.png"
    image.save(png)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(png), x=10, y=10, w=190)
    target = tmp_path / "scanned.pdf"
    pdf.output(str(target))
    return target


def test_scanned_pdf_without_ocr_says_why(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    no_ocr = ingest_settings.model_copy(update={"ocr": False})
    err = _raises(EmptyDocumentError, _scanned_pdf(tmp_path), no_ocr)
    assert "no text layer" in err.message
    assert "ingest.ocr" in err.message


needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (.ci/run installs it)"
)


@needs_tesseract
def test_scanned_pdf_with_ocr(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    ocr = ingest_settings.model_copy(update={"ocr": True})
    chunks = chunk_file(_scanned_pdf(tmp_path), ocr)
    text = " ".join(c.text for c in chunks).lower()
    assert "badge renewal" in text
    assert "24 months" in text
    assert chunks[0].page == 1


@needs_tesseract
def test_image_with_ocr(tmp_path: Path, ingest_settings: IngestSettings) -> None:
    _scanned_pdf(tmp_path)  # also writes scan.png
    ocr = ingest_settings.model_copy(update={"ocr": True})
    chunks = chunk_file(tmp_path / "scan.png", ocr)
    assert "badge renewal" in " ".join(c.text for c in chunks).lower()


def test_ocr_is_on_by_default_exactly_when_tesseract_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert IngestSettings().ocr is (shutil.which("tesseract") is not None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert IngestSettings().ocr is False
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert IngestSettings().ocr is True
    assert IngestSettings(ocr=False).ocr is False
