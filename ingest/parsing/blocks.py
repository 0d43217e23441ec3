"""The parser's output: a document as a flat list of blocks (headings, text, tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Block:
    kind: Literal["heading", "text", "table"]
    text: str
    level: int | None = None
    """Headings only: 0 = top level; None = a heading whose level the format does not say."""
    page: int | None = None
    rows: tuple[tuple[str, ...], ...] = ()
    """Tables only: cell texts, first row first (usually the header)."""


@dataclass
class ParsedDocument:
    kind: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    description: str | None = None
    """What the document says it is about (Markdown front matter), if it says."""
    keywords: tuple[str, ...] = ()
    """Search words the author attached to the whole document (Markdown front matter)."""
