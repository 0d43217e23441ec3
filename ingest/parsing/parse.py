"""File -> :class:`~ingest.parsing.blocks.ParsedDocument` with unstructured (``fast`` strategy).

One partitioner per detected format (see docs/parsing.md for the table). PDFs are read from their
text layer; a PDF without one is OCR'd with tesseract (``ocr_only``, no layout model) when
``ingest.ocr`` is on, and skipped with a reason otherwise. Images need ``ingest.ocr``. E-mail
bodies are indexed, their attachments are listed by name but not opened (they would bypass the
type/size/encryption checks; store them as files to index them). Markdown is read by a CommonMark
parser (:mod:`ingest.parsing.mdblocks`), not by unstructured; big .txt/.md files take the
streaming fast path in :mod:`ingest.parsing.textfast`. Legacy Office files (.doc, .xls, .ppt)
are converted to their Open XML form by LibreOffice first (:mod:`ingest.parsing.legacy`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from core.errors import EmptyDocumentError, ParseFailedError
from core.settings import IngestSettings
from ingest.parsing.blocks import Block, ParsedDocument
from ingest.parsing.caps import capped_blocks, check_archive
from ingest.parsing.detect import Detected, detect
from ingest.parsing.frontmatter import FrontMatter, split_front_matter
from ingest.parsing.legacy import TARGETS as LEGACY_TARGETS
from ingest.parsing.legacy import converted
from ingest.parsing.mdblocks import markdown_blocks
from ingest.parsing.offline import prepare_unstructured
from ingest.parsing.pdfprobe import norm, pdf_text_sample, probe_pdf
from ingest.parsing.textfast import FAST_TEXT_BYTES, iter_text_blocks, sniff_encoding

log = logging.getLogger(__name__)

_PARTITIONERS: dict[str, tuple[str, str]] = {
    "docx": ("docx", "partition_docx"),
    "pptx": ("pptx", "partition_pptx"),
    "xlsx": ("xlsx", "partition_xlsx"),
    "html": ("html", "partition_html"),
    "txt": ("text", "partition_text"),
    "epub": ("epub", "partition_epub"),
    "odt": ("odt", "partition_odt"),
    "rtf": ("rtf", "partition_rtf"),
    "rst": ("rst", "partition_rst"),
    "org": ("org", "partition_org"),
    "csv": ("csv", "partition_csv"),
    "tsv": ("tsv", "partition_tsv"),
    "xml": ("xml", "partition_xml"),
    "eml": ("email", "partition_email"),
    "msg": ("msg", "partition_msg"),
}
_PAGED = frozenset({"pdf", "pptx", "docx"})
"""Formats whose page numbers mean something (PPTX: the slide number)."""
_HEADING_LEVELS = frozenset({"docx", "pptx", "md", "html", "epub", "odt", "rtf", "rst", "org"})
"""Formats whose headings carry a real level (Heading 1/2, #/##, h1/h2)."""
_NO_HEADINGS = frozenset({"xml", "eml", "msg", "csv", "tsv"})
"""Formats where unstructured's guessed 'titles' are just short lines."""
_SKIP_CATEGORIES = frozenset({"PageBreak", "PageNumber"})
_MARGIN_CATEGORIES = frozenset({"Header", "Footer"})
"""Page headers/footers are dropped when they repeat (running heads); a one-off is content."""
_MAX_HEADING_CHARS = 200
_IMAGE_KINDS = frozenset({"png", "jpg", "tiff", "bmp", "heic", "webp"})


def parse_file(path: Path, settings: IngestSettings) -> ParsedDocument:
    """Detect, then parse. Raises only :mod:`ingest.errors` (and lets bugs surface as-is)."""
    found = detect(path, max_file_mb=settings.max_file_mb, ocr=settings.ocr)
    check_archive(path, found.kind, settings)
    prepare_unstructured()
    meta_title: str | None = None
    front = FrontMatter()
    title_kind = found.kind  # a converted legacy file is titled like the format it became
    if found.kind in ("txt", "md") and found.size > FAST_TEXT_BYTES:
        blocks = list(capped_blocks(iter_text_blocks(path, markdown=found.kind == "md"), settings))
    elif found.kind == "pdf":
        meta_title, blocks = _parse_pdf(path, settings)
    elif found.kind in _IMAGE_KINDS:
        blocks = list(_to_blocks(_ocr_image(path, settings), found.kind))
    elif found.kind in ("csv", "tsv"):
        blocks = _parse_delimited(path, found)
    elif found.kind in LEGACY_TARGETS:
        target = LEGACY_TARGETS[found.kind]
        limit = min(settings.convert_timeout_s, 0.9 * settings.parse_timeout_s)
        with converted(path, found.kind, limit) as ooxml:
            blocks = list(_to_blocks(_partition(ooxml, Detected(target, found.size)), target))
            meta_title = ooxml_title(ooxml)
        title_kind = target
    elif found.kind == "md":
        body = path.read_text(sniff_encoding(path), errors="replace")
        if settings.front_matter:
            front, body = split_front_matter(body)
            meta_title = front.title
        blocks = markdown_blocks(body)
        stub = front.stub_text() if not any(b.text.strip() or b.rows for b in blocks) else None
        if stub:
            blocks = [Block("text", stub)]
    else:
        elements = _partition(path, found)
        blocks = list(capped_blocks(_to_blocks(elements, found.kind), settings))
        if found.kind in ("eml", "msg"):
            meta_title, header = _email_header(path, found.kind, elements)
            blocks = header + blocks
        elif found.kind in ("docx", "pptx", "xlsx"):
            meta_title = ooxml_title(path)
    blocks = list(capped_blocks(blocks, settings))
    if not any(b.text.strip() or b.rows for b in blocks):
        raise EmptyDocumentError(f"no text found in this {found.kind.upper()} file")
    return ParsedDocument(
        kind=found.kind,
        title=_title(path, title_kind, meta_title, blocks),
        blocks=blocks,
        description=front.description,
        keywords=front.keywords,
    )


def _call(what: str, fn: Callable[..., list[Any]], **kwargs: Any) -> list[Any]:
    try:
        return fn(**kwargs)
    except (MemoryError, RecursionError) as exc:
        raise ParseFailedError(f"{what} is too complex to parse ({type(exc).__name__})") from exc
    except Exception as exc:
        raise ParseFailedError(f"{what} could not be parsed: {plain_reason(exc)}") from exc


def plain_reason(exc: BaseException) -> str:
    """The underlying error in words a person can act on."""
    import zipfile

    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    if isinstance(exc, zipfile.BadZipFile):
        return f"the file is damaged or not really an Office/EPUB file (bad ZIP container: {text})"
    if isinstance(exc, KeyError):
        return f"a part the format requires is missing ({text or 'unknown part'})"
    if isinstance(exc, UnicodeError):
        return f"the text encoding could not be decoded ({text})"
    if type(exc).__name__ in ("PDFSyntaxError", "PdfReadError", "PdfStreamError"):
        return f"the PDF is damaged ({text})"
    if type(exc).__name__ in ("XMLSyntaxError", "ParseError"):
        return f"the markup is malformed ({text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _partition(path: Path, found: Detected, text: str | None = None) -> list[Any]:
    """Partition ``path`` (or ``text``, its already-read content, when given)."""
    module_name, func_name = _PARTITIONERS[found.kind]
    fn = getattr(importlib.import_module(f"unstructured.partition.{module_name}"), func_name)
    kwargs: dict[str, Any] = {"filename": str(path)} if text is None else {"text": text}
    if found.kind in ("eml", "msg"):
        kwargs["process_attachments"] = False
    if found.kind == "csv":
        kwargs["encoding"] = sniff_encoding(path)
    return _call(f"this {found.kind.upper()} file", fn, **kwargs)


def _parse_delimited(path: Path, found: Detected) -> list[Block]:
    """unstructured (pandas) first; rows of uneven length make pandas give up, and then the
    standard csv reader keeps whatever rows there are."""
    try:
        return list(_to_blocks(_partition(path, found), found.kind))
    except ParseFailedError as first:
        import csv

        delimiter = "\t" if found.kind == "tsv" else ","
        try:
            with path.open(encoding=sniff_encoding(path), newline="") as fh:
                rows = tuple(
                    tuple(cell.strip() for cell in row)
                    for row in csv.reader(fh, delimiter=delimiter)
                    if any(cell.strip() for cell in row)
                )
        except (csv.Error, UnicodeError) as exc:
            raise ParseFailedError(f"{first.message}; csv reader: {exc}") from exc
        return [Block("table", "", rows=rows)] if rows else []


def _ocr_languages(settings: IngestSettings) -> list[str]:
    return [lang for lang in settings.ocr_languages.replace(",", "+").split("+") if lang] or ["eng"]


def _ocr_image(path: Path, settings: IngestSettings) -> list[Any]:
    from unstructured.partition.image import partition_image

    return _call(
        "OCR of this image",
        partition_image,
        filename=str(path),
        strategy="ocr_only",
        languages=_ocr_languages(settings),
    )


def _parse_pdf(path: Path, settings: IngestSettings) -> tuple[str | None, list[Block]]:
    info = probe_pdf(path)
    from unstructured.partition.pdf import partition_pdf

    langs = _ocr_languages(settings)
    elements = _call(
        "this PDF", partition_pdf, filename=str(path), strategy="fast", languages=langs
    )
    blocks = list(_to_blocks(elements, "pdf", outline=info.outline))
    if blocks:
        return info.title, blocks
    # unstructured returns nothing (rather than raising) for a PDF with no text layer, one its
    # safety heuristics call too complex, and one pdfminer cannot read. Tell them apart.
    sample = pdf_text_sample(path)
    if settings.ocr:
        log.info("%s: no text layer read, running OCR (%s)", path, "+".join(langs))
        elements = _call(
            "OCR of this PDF",
            partition_pdf,
            filename=str(path),
            strategy="ocr_only",
            languages=langs,
        )
        blocks = list(_to_blocks(elements, "pdf", outline=info.outline))
        if blocks:
            return info.title, blocks
        raise EmptyDocumentError(f"OCR found no text on the {info.pages} page(s) of this PDF")
    if sample:
        raise ParseFailedError(
            "the PDF has text but it could not be extracted safely (damaged content streams or "
            "pages too complex for text extraction); set ingest.ocr = true to read it by OCR"
        )
    raise EmptyDocumentError(
        f"the PDF has no text layer ({info.pages} page(s), probably scanned images); "
        "set ingest.ocr = true to read it with tesseract"
    )


def _to_blocks(
    elements: Iterable[Any], kind: str, outline: dict[str, int] | None = None
) -> Iterator[Block]:
    blocks = _element_blocks(list(elements), kind, outline or {})
    yield from _join_broken_lines(blocks) if kind == "pdf" else blocks


def _element_blocks(elements: list[Any], kind: str, outline: dict[str, int]) -> Iterator[Block]:
    repeated = _repeated_margins(elements)
    sheet: str | None = None
    for el in elements:
        category = getattr(el, "category", "")
        if category in _SKIP_CATEGORIES:
            continue
        if category in _MARGIN_CATEGORIES and (el.text or "").strip() in repeated:
            continue
        md = el.metadata
        text = (el.text or "").strip()
        page = md.page_number if kind in _PAGED else None
        if kind in ("xlsx", "xls"):
            name = md.page_name or (f"Sheet {md.page_number}" if md.page_number else None)
            if name and name != sheet:
                sheet = name
                yield Block("heading", name, level=0)
            if category == "Title" and text == sheet:
                continue
        if category == "Table":
            rows = table_rows(md.text_as_html)
            if rows:
                yield Block("table", text, page=page, rows=rows)
            elif text:
                yield Block("text", text, page=page)
            continue
        if not text:
            continue
        if category == "Title" and _is_heading(text, kind, md.category_depth, outline):
            depth = md.category_depth if kind in _HEADING_LEVELS else None
            if kind == "pdf":
                depth = outline.get(norm(text))
            yield Block("heading", text, level=depth, page=page)
        elif kind == "pdf" and outline and norm(text) in outline:
            yield Block("heading", text, level=outline[norm(text)], page=page)
        elif category == "ListItem":
            yield Block("text", f"- {text}", page=page)
        else:
            yield Block("text", text, page=page)


def _is_heading(text: str, kind: str, depth: int | None, outline: dict[str, int]) -> bool:
    if kind in _NO_HEADINGS or len(text) > _MAX_HEADING_CHARS:
        return False
    if kind == "pptx":
        return not depth  # depth 0 is the slide title; deeper "titles" are short bullets
    if kind == "pdf":
        # PDF "titles" are guesses from line shape; trust the bookmarks when the PDF has them,
        # else accept only lines that look like headings (a sentence's last line does not).
        if outline:
            return norm(text) in outline
        words = text.split()
        return (
            len(words) <= 12
            and text[-1] not in ".,;:"
            and (text[0].isupper() or text[0].isdigit())
            and any(ch.isalpha() for ch in text)
        )
    return True


def _join_broken_lines(blocks: Iterator[Block]) -> Iterator[Block]:
    """pdfminer often returns each line of a paragraph as its own element; glue a line to the
    previous one when that one does not end a sentence and this one continues it."""
    pending: Block | None = None
    for block in blocks:
        if (
            pending is not None
            and block.kind == "text"
            and pending.kind == "text"
            and block.page == pending.page
            and pending.text[-1] not in ".!?:"
            and not block.text.startswith(("-", "•"))
        ):
            pending = Block("text", f"{pending.text} {block.text}", page=pending.page)
            continue
        if pending is not None:
            yield pending
        pending = block
    if pending is not None:
        yield pending


def _repeated_margins(elements: list[Any]) -> set[str]:
    seen: dict[str, int] = {}
    for el in elements:
        if getattr(el, "category", "") in _MARGIN_CATEGORIES:
            text = (el.text or "").strip()
            seen[text] = seen.get(text, 0) + 1
    return {text for text, count in seen.items() if count > 1 or not text}


def table_rows(html: str | None) -> tuple[tuple[str, ...], ...]:
    """Cell texts of an HTML table, empty rows dropped."""
    if not html:
        return ()
    import lxml.html

    try:
        root = lxml.html.fromstring(html)
    except Exception:
        return ()
    rows = []
    for tr in root.iter("tr"):
        cells = tuple(" ".join(c.text_content().split()) for c in tr if c.tag in ("td", "th"))
        if any(cells):
            rows.append(cells)
    return tuple(rows)


def ooxml_title(path: Path) -> str | None:
    """``dc:title`` from an Office Open XML package's core properties (None if absent)."""
    import zipfile

    import lxml.etree

    try:
        with zipfile.ZipFile(path) as package:
            root = lxml.etree.fromstring(package.read("docProps/core.xml"))
    except Exception:
        return None
    node = root.find("{http://purl.org/dc/elements/1.1/}title")
    return node.text.strip() if node is not None and node.text and node.text.strip() else None


def _email_header(path: Path, kind: str, elements: list[Any]) -> tuple[str | None, list[Block]]:
    md = elements[0].metadata if elements else None
    subject = getattr(md, "subject", None) if md else None
    lines = []
    for label, attr in (("From", "sent_from"), ("To", "sent_to"), ("Cc", "cc_recipient")):
        value = getattr(md, attr, None) if md else None
        if value:
            lines.append(f"{label}: {', '.join(value)}")
    if subject:
        lines.append(f"Subject: {subject}")
    names = _attachment_names(path, kind)
    blocks = [Block("text", "\n".join(lines))] if lines else []
    if names:
        blocks.append(Block("text", "Attachments: " + ", ".join(names)))
    return subject, blocks


def _attachment_names(path: Path, kind: str) -> list[str]:
    try:
        if kind == "eml":
            import email
            import email.policy

            with path.open("rb") as fh:
                msg = email.message_from_binary_file(fh, policy=email.policy.default)
            iter_attachments = getattr(msg, "iter_attachments", None)
            if iter_attachments is None:
                return []
            return [a.get_filename() or a.get_content_type() for a in iter_attachments()]
        from oxmsg import Message

        return [a.file_name or "unnamed" for a in Message.load(str(path)).attachments]
    except Exception:
        return []


def _title(path: Path, kind: str, meta_title: str | None, blocks: list[Block]) -> str:
    if meta_title and meta_title.strip():
        return " ".join(meta_title.split())[:_MAX_HEADING_CHARS]
    if kind in _HEADING_LEVELS:
        for block in blocks[:8]:
            if block.kind == "heading" and block.level in (0, None):
                return block.text
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name
