"""Cheap facts about a PDF from pypdf: readable at all, encrypted, page count, title, text."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import EncryptedFileError, ParseFailedError

_SAMPLE_PAGES = 5


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    title: str | None
    outline: dict[str, int] = field(default_factory=dict)
    """Bookmark titles (normalised with :func:`norm`) -> nesting level, 0 = top."""


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _reader(path: Path) -> object:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    return PdfReader(str(path), strict=False)


def probe_pdf(path: Path) -> PdfInfo:
    """Raise EncryptedFileError for a password-protected PDF (an empty user password, common
    for "owner-locked" PDFs, is tried first) and ParseFailedError for one pypdf cannot open."""
    from pypdf import PdfReader

    try:
        reader = _reader(path)
        assert isinstance(reader, PdfReader)
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                raise EncryptedFileError("the PDF is password-protected")
        pages = len(reader.pages)
        meta = reader.metadata
        title = meta.title if meta is not None else None
        outline = _outline(reader)
    except EncryptedFileError:
        raise
    except Exception as exc:
        raise ParseFailedError(f"the PDF is damaged and cannot be opened ({_short(exc)})") from exc
    if pages == 0:
        raise ParseFailedError("the PDF is damaged: no page could be read")
    return PdfInfo(pages=pages, title=str(title) if title else None, outline=outline)


def _outline(reader: Any) -> dict[str, int]:
    found: dict[str, int] = {}

    def walk(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
            elif getattr(item, "title", None):
                found.setdefault(norm(str(item.title)), level)

    try:
        walk(reader.outline, 0)
    except Exception:
        return {}
    return found


def pdf_text_sample(path: Path) -> str:
    """Text pypdf finds on the first few pages ('' if none or unreadable)."""
    from pypdf import PdfReader

    try:
        reader = _reader(path)
        assert isinstance(reader, PdfReader)
        if reader.is_encrypted:
            reader.decrypt("")
        parts = []
        for i in range(min(_SAMPLE_PAGES, len(reader.pages))):
            parts.append(reader.pages[i].extract_text() or "")
        return " ".join("".join(parts).split())
    except Exception:
        return ""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
