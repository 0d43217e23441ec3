"""Structure-aware chunking: :func:`chunk_file` turns one file into retrieval chunks.

Rules (docs/parsing.md explains them with examples):

* Headings open sections; a chunk's ``section`` is its heading path ("Expenses > Travel").
* Every chunk's text starts with one context line, ``<document title> — <section path>``, so a
  chunk retrieves well on its own (the body alone often lacks the words the question uses).
  When the document carries search keywords (Markdown front matter) and ``chunk_keywords`` is
  on, a second line ``Keywords: a, b, c`` follows: the author's words for the whole page
  ("vacation, bereavement" on "Leave types") then match every chunk of it.
* A section that fits in ``chunk_max_chars`` is one chunk. A longer one is split between
  paragraphs, else between sentences, else between words (never inside a word), and each piece
  after the first repeats the last ``chunk_overlap_chars`` of the previous one.
* Tables stay whole when they fit; a bigger one is split between rows and every piece repeats
  the header row. Rows are rendered ``cell | cell | cell``.
* Tiny neighbouring sections (under an eighth of ``chunk_max_chars``) are merged into one chunk
  whose ``section`` is their common heading path; each keeps its own heading line in the body.
* ``page`` is the page (PDF), slide (PPTX) or rendered page (DOCX) of the chunk's first block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import EmptyDocumentError, IngestError, ParseFailedError
from core.settings import IngestSettings
from ingest.parsing.blocks import Block, ParsedDocument
from ingest.parsing.caps import check_chunks
from ingest.parsing.parse import parse_file, plain_reason

_UNKNOWN_LEVEL = 99
_NO_MERGE = frozenset({"pptx"})
"""Formats whose sections are never merged: a slide is its own chunk (and cites its number)."""
_SEP = " > "


@dataclass(frozen=True)
class Chunk:
    text: str
    section: str
    title: str
    page: int | None
    chunk_index: int


def chunk_file(path: Path, settings: IngestSettings) -> list[Chunk]:
    """Parse and chunk ``path``. Raises only subclasses of ``core.errors.IngestError``."""
    try:
        doc = parse_file(Path(path), settings)
        chunks = chunk_document(
            doc,
            max_chars=settings.chunk_max_chars,
            overlap=settings.chunk_overlap_chars,
            keywords=settings.chunk_keywords,
        )
    except IngestError:
        raise
    except Exception as exc:
        raise ParseFailedError(
            f"unexpected error while reading the file: {plain_reason(exc)}"
        ) from exc
    if not chunks:
        raise EmptyDocumentError("the document has no text to index")
    check_chunks(len(chunks), settings)
    return chunks


@dataclass
class _Piece:
    path: tuple[str, ...]
    text: str
    page: int | None
    split: bool = False
    """A piece of a section that had to be split (never merged with a neighbour)."""


@dataclass
class _Section:
    path: tuple[str, ...]
    page: int | None = None
    items: list[Block] = field(default_factory=list)

    def keep_heading(self) -> None:
        """A heading with no text of its own that nothing nests under (a cover title, a slide
        with only a title, a document made of headings): keep it as a line of text."""
        if not self.items and self.path:
            self.items.append(Block("text", self.path[-1], page=self.page))


def chunk_document(
    doc: ParsedDocument, *, max_chars: int, overlap: int, keywords: bool = True
) -> list[Chunk]:
    groups: list[list[_Piece]] = []
    small = max_chars // 8 if doc.kind not in _NO_MERGE else 0
    head = _Head(doc.title, _keyword_line(doc.keywords) if keywords else "")
    for section in _sections(doc.blocks):
        pieces = _section_pieces(section, head, max_chars, overlap)
        if not pieces:
            continue
        if len(pieces) == 1 and not pieces[0].split and groups and not groups[-1][-1].split:
            candidate = [*groups[-1], pieces[0]]
            prefix = _common_prefix([p.path for p in candidate])
            body_now = len(_render_body(groups[-1]))
            fits = len(_render(head, candidate)) <= max_chars
            related = bool(prefix) or len(pieces[0].text) < small
            if fits and body_now < small and related:
                groups[-1] = candidate
                continue
        groups.extend([p] for p in pieces)
    chunks = []
    for index, group in enumerate(groups):
        path = _common_prefix([p.path for p in group])
        chunks.append(
            Chunk(
                text=_render(head, group),
                section=_SEP.join(path),
                title=doc.title,
                page=group[0].page,
                chunk_index=index,
            )
        )
    return chunks


def _sections(blocks: list[Block]) -> list[_Section]:
    stack: list[tuple[int, str]] = []
    sections = [_Section(path=())]
    for block in blocks:
        if block.kind == "heading":
            level = _UNKNOWN_LEVEL if block.level is None else block.level
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, " ".join(block.text.split())))
            previous = sections[-1]
            path = tuple(text for _, text in stack)
            if path[: len(previous.path)] != previous.path:
                previous.keep_heading()
            sections.append(_Section(path=path, page=block.page))
        else:
            sections[-1].items.append(block)
    sections[-1].keep_heading()
    return [s for s in sections if s.items]


def _section_pieces(section: _Section, head: _Head, max_chars: int, overlap: int) -> list[_Piece]:
    budget = max(max_chars - len(_context(head, section.path)) - 1, max_chars // 2)
    rendered = [(_render_block(b), b) for b in section.items]
    total = sum(len(text) for text, _ in rendered) + 2 * (len(rendered) - 1)
    if total <= budget:
        page = section.items[0].page if section.items[0].page is not None else section.page
        return [_Piece(section.path, "\n\n".join(text for text, _ in rendered), page)]
    overlap = min(overlap, budget // 3)
    limit = budget - overlap
    raw: list[tuple[str, int | None, bool]] = []  # text, page, is_table
    current: list[str] = []
    current_page: int | None = None

    def flush() -> None:
        nonlocal current, current_page
        if current:
            raw.append(("\n\n".join(current), current_page, False))
        current, current_page = [], None

    for text, block in rendered:
        if len(text) > limit:
            flush()
            parts = _split_table(block.rows, limit) if block.kind == "table" else None
            for part in parts or split_words(text, limit):
                raw.append((part, block.page, block.kind == "table"))
            continue
        if current and sum(map(len, current)) + 2 * len(current) + len(text) > limit:
            flush()
        if not current:
            current_page = block.page
        current.append(text)
    flush()
    pieces = []
    for i, (text, page, is_table) in enumerate(raw):
        if i and overlap and not is_table and not raw[i - 1][2]:
            text = f"{_tail(raw[i - 1][0], overlap)}\n{text}"
        pieces.append(_Piece(section.path, text, page, split=True))
    return pieces


def _render_block(block: Block) -> str:
    if block.kind == "table" and block.rows:
        return "\n".join(" | ".join(row) for row in block.rows)
    return block.text


def _split_table(rows: tuple[tuple[str, ...], ...], limit: int) -> list[str] | None:
    if len(rows) < 2:
        return None
    header = " | ".join(rows[0])
    if len(header) > limit // 2:
        return None
    parts: list[str] = []
    lines = [header]
    for row in rows[1:]:
        line = " | ".join(row)
        if len(line) + len(header) + 1 > limit:
            if len(lines) > 1:
                parts.append("\n".join(lines))
            parts.extend(f"{header}\n{p}" for p in split_words(line, limit - len(header) - 1))
            lines = [header]
            continue
        if sum(map(len, lines)) + len(lines) + len(line) > limit:
            parts.append("\n".join(lines))
            lines = [header]
        lines.append(line)
    if len(lines) > 1:
        parts.append("\n".join(lines))
    return parts


def split_words(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` chars, cut at a paragraph, sentence or word boundary.

    Only a single "word" longer than ``limit`` (a URL, a base64 blob) is cut inside.
    """
    text = text.strip()
    out: list[str] = []
    start = 0
    while len(text) - start > limit:
        cut = _boundary(text, start, start + limit)
        out.append(text[start:cut].rstrip())
        start = cut
        while start < len(text) and text[start].isspace():
            start += 1
    if start < len(text):
        out.append(text[start:])
    return [p for p in out if p]


def _boundary(text: str, start: int, end: int) -> int:
    floor = start + (end - start) // 2
    window = text[start : end + 1]
    for marker in ("\n\n", ". ", "? ", "! ", "; ", "\n"):
        pos = window.rfind(marker)
        if pos >= 0 and start + pos >= floor:
            return start + pos + len(marker.rstrip())
    for pos in range(len(window) - 1, 0, -1):
        if window[pos].isspace():
            return start + pos
    return end


def _tail(text: str, size: int) -> str:
    if len(text) <= size:
        return text
    tail = text[-size:]
    if not text[-size - 1].isspace():
        space = next((i for i, ch in enumerate(tail) if ch.isspace()), len(tail))
        tail = tail[space:]
    return tail.strip()


@dataclass(frozen=True)
class _Head:
    """What every chunk of a document starts with: its title and its keyword line (or "")."""

    title: str
    keywords: str


def _keyword_line(keywords: tuple[str, ...]) -> str:
    if not keywords:
        return ""
    line = "Keywords: " + ", ".join(keywords)
    return line if len(line) <= 300 else line[:300].rsplit(",", 1)[0]


def _context(head: _Head, path: tuple[str, ...]) -> str:
    title = head.title
    first, name = (path[0].casefold(), title.casefold()) if path else ("", "")
    if path and (first == name or name.startswith(first + " ") or name.endswith(" " + first)):
        path = path[1:]  # "Acme - Leave Policy" + "Leave Policy > Sick leave": say it once
    section = _SEP.join(path)
    line = f"{title} — {section}" if section else title
    line = line if len(line) <= 200 else line[:200].rsplit(" ", 1)[0] + " …"
    return f"{line}\n{head.keywords}" if head.keywords else line


def _common_prefix(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    prefix = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _render_body(group: list[_Piece]) -> str:
    if len(group) == 1:
        return group[0].text
    prefix = _common_prefix([p.path for p in group])
    parts = []
    for piece in group:
        heading = _SEP.join(piece.path[len(prefix) :])
        parts.append(f"{heading}\n{piece.text}" if heading else piece.text)
    return "\n\n".join(parts)


def _render(head: _Head, group: list[_Piece]) -> str:
    path = _common_prefix([p.path for p in group])
    return f"{_context(head, path)}\n{_render_body(group)}"
