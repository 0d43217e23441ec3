"""What is this file? Size, type (from its bytes) and encryption, before any parser runs.

The type comes from libmagic through ``unstructured.file_utils.filetype.detect_filetype``; the
extension is only a tie-breaker there. A file whose bytes are binary but whose name says
``.txt`` (or ``.md``, ...) is rejected as unsupported, not fed to the text parser.
"""

from __future__ import annotations

import email.parser
from dataclasses import dataclass
from pathlib import Path

from core.errors import (
    EmptyDocumentError,
    EncryptedFileError,
    FileTooLargeError,
    ParseFailedError,
    UnsupportedFileError,
)
from ingest.parsing.legacy import NAMES as LEGACY_NAMES
from ingest.parsing.legacy import soffice
from ingest.parsing.offline import prepare_unstructured

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TEXT_KINDS = frozenset({"txt", "md", "rst", "org", "csv", "tsv", "html", "xml", "eml", "rtf"})
_IMAGE_KINDS = frozenset({"png", "jpg", "tiff", "bmp", "heic", "webp"})
# unstructured FileType name -> (our format name, what to call it in messages)
_KINDS: dict[str, str] = {
    "PDF": "pdf",
    "DOCX": "docx",
    "PPTX": "pptx",
    "XLSX": "xlsx",
    "XLS": "xls",
    "DOC": "doc",
    "PPT": "ppt",
    "HTML": "html",
    "MD": "md",
    "TXT": "txt",
    "EML": "eml",
    "MSG": "msg",
    "EPUB": "epub",
    "ODT": "odt",
    "RTF": "rtf",
    "RST": "rst",
    "ORG": "org",
    "CSV": "csv",
    "TSV": "tsv",
    "XML": "xml",
    "JSON": "json",
    "NDJSON": "ndjson",
    "PNG": "png",
    "JPG": "jpg",
    "TIFF": "tiff",
    "BMP": "bmp",
    "HEIC": "heic",
    "WEBP": "webp",
}

_WHY_UNSUPPORTED = {
    "json": "JSON is structured data, not a document; Enclave indexes documents only",
    "ndjson": "NDJSON is structured data, not a document; Enclave indexes documents only",
}


@dataclass(frozen=True)
class Detected:
    kind: str
    """Our format name: pdf, docx, pptx, xlsx, html, md, txt, eml, msg, epub, odt, rtf, ..."""
    size: int


def detect(path: Path, *, max_file_mb: float, ocr: bool) -> Detected:
    """Classify ``path`` or raise the IngestError that says why it will not be parsed."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseFailedError(f"cannot read the file: {exc.strerror or exc}") from exc
    limit = int(max_file_mb * 1024 * 1024)
    if size > limit:
        raise FileTooLargeError(
            f"file is {size / 1_048_576:.1f} MB, above ingest.max_file_mb = {max_file_mb:g} MB"
        )
    if size == 0:
        raise EmptyDocumentError("file is empty (0 bytes)")

    with path.open("rb") as fh:
        head = fh.read(8)
    if head == _OLE_MAGIC:
        _refuse_encrypted_ole(path)

    prepare_unstructured()
    from unstructured.file_utils.filetype import detect_filetype

    try:
        file_type = detect_filetype(file_path=str(path))
    except Exception as exc:
        raise UnsupportedFileError(f"could not determine the file type: {exc}") from exc
    name = file_type.name
    if name == "EMPTY":
        raise EmptyDocumentError("file holds no content")
    kind = _KINDS.get(name)
    if kind is None:
        mime = getattr(file_type, "mime_type", name)
        raise UnsupportedFileError(f"unsupported file type {mime} (detected from the content)")
    if kind in _WHY_UNSUPPORTED:
        raise UnsupportedFileError(_WHY_UNSUPPORTED[kind])
    if kind in LEGACY_NAMES and soffice() is None:
        raise UnsupportedFileError(
            f"{LEGACY_NAMES[kind]} needs LibreOffice (soffice) to convert, which is not "
            "installed; save it as .docx/.xlsx/.pptx"
        )
    if kind in _IMAGE_KINDS and not ocr:
        raise UnsupportedFileError(
            f"{kind.upper()} image: images are read only with OCR (set ingest.ocr = true)"
        )
    if kind in _TEXT_KINDS and _looks_binary(path):
        raise UnsupportedFileError(
            f"binary content in a file named like {kind.upper()} text (detected from the bytes)"
        )
    if kind == "eml":
        _refuse_encrypted_email(path)
    return Detected(kind=kind, size=size)


def _refuse_encrypted_ole(path: Path) -> None:
    """Password-protected Office files (any of docx/xlsx/pptx/doc/xls/ppt) are OLE containers."""
    import msoffcrypto

    try:
        with path.open("rb") as fh:
            encrypted = msoffcrypto.OfficeFile(fh).is_encrypted()
    except Exception:
        return  # not an Office container msoffcrypto knows (e.g. Outlook .msg): parse decides
    if encrypted:
        raise EncryptedFileError("the Office document is password-protected")


def _refuse_encrypted_email(path: Path) -> None:
    with path.open("rb") as fh:
        headers = email.parser.BytesParser().parse(fh, headersonly=True)
    ctype = headers.get_content_type()
    params = {k.lower(): v.lower() for k, v in headers.get_params(failobj=[])[1:]}
    if ctype == "multipart/encrypted" or (
        ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime")
        and params.get("smime-type", "enveloped-data") == "enveloped-data"
    ):
        raise EncryptedFileError(f"the e-mail body is encrypted ({ctype})")


def _looks_binary(path: Path) -> bool:
    """NUL bytes outside a UTF-16/32 text, or bytes no text encoding explains."""
    with path.open("rb") as fh:
        sample = fh.read(8192)
    if sample.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return False
    if b"\x00" in sample:
        # UTF-16 without BOM: every other byte is NUL for Latin text.
        even, odd = sample[0::2], sample[1::2]
        if even.count(0) > len(even) * 0.3 or odd.count(0) > len(odd) * 0.3:
            return not _decodes_as_utf16(sample)
        return True
    from charset_normalizer import from_bytes

    return from_bytes(sample).best() is None


def _decodes_as_utf16(sample: bytes) -> bool:
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = sample[: len(sample) // 2 * 2].decode(codec)
        except UnicodeDecodeError:
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in text)
        if printable > len(text) * 0.9:
            return True
    return False
