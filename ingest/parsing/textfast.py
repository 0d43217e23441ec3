"""Fast path for big plain-text and Markdown files.

unstructured classifies every paragraph of a text file with spaCy, which is slow on big files
(a 3.2 MB .txt took 53 s here). Above :data:`FAST_TEXT_BYTES` we stream the file line by line
instead: Markdown ATX (``# Title``) and setext (``Title`` over ``====``) headings become headings,
blank lines separate paragraphs, fenced code stays together, and a form feed starts a new page.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ingest.parsing.blocks import Block

FAST_TEXT_BYTES = 256 * 1024
"""Text and Markdown files bigger than this skip unstructured."""

_MAX_PARAGRAPH_CHARS = 32_000
_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def sniff_encoding(path: Path) -> str:
    with path.open("rb") as fh:
        sample = fh.read(65536)
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if sample.startswith(bom):
            return name
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return best.encoding if best is not None else "latin-1"


def iter_text_blocks(path: Path, *, markdown: bool) -> Iterator[Block]:
    """Stream ``path`` into blocks; memory is bounded by one paragraph (at most 32k chars)."""
    encoding = sniff_encoding(path)
    with path.open(encoding=encoding, errors="replace", newline=None) as fh:
        yield from iter_line_blocks(fh, markdown=markdown)


def iter_line_blocks(lines: Iterable[str], *, markdown: bool) -> Iterator[Block]:
    """Blocks of text ``lines`` (with or without their newlines), as :func:`iter_text_blocks`."""
    page = 1
    para: list[str] = []
    size = 0
    in_code = False

    def flush() -> Iterator[Block]:
        nonlocal size
        if para:
            text = "\n".join(para).strip()
            para.clear()
            size = 0
            if text:
                yield Block("text", text, page=page)

    for raw in lines:
        line = raw.rstrip("\n")
        if "\f" in line:
            *done, line = line.split("\f")
            for segment in done:
                if segment.strip():
                    para.append(segment)
                yield from flush()
                page += 1
        if markdown and _FENCE.match(line):
            in_code = not in_code
            para.append(line)
            continue
        if not in_code:
            atx = _ATX.match(line) if markdown else None
            if atx and atx.group(2):
                yield from flush()
                yield Block("heading", atx.group(2), level=len(atx.group(1)) - 1, page=page)
                continue
            setext = _SETEXT.match(line) if markdown else None
            if setext and len(para) == 1 and para[0].strip():
                title = para.pop().strip()
                size = 0
                yield Block("heading", title, level=0 if line[0] == "=" else 1, page=page)
                continue
            if not line.strip():
                yield from flush()
                continue
        para.append(line)
        size += len(line)
        if size >= _MAX_PARAGRAPH_CHARS:
            yield from flush()
    yield from flush()
