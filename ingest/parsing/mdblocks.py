"""Markdown read by a CommonMark parser: the blocks the author wrote, no guessing.

unstructured turns Markdown into HTML and then classifies every paragraph of that HTML with a
statistical sentence tokenizer (spaCy) to guess whether it is a title or narrative text. For
Markdown that guess is unnecessary (``#`` says what a heading is) and it was the largest cost of
ingesting a Markdown handbook: two thirds of the parse time. Here markdown-it-py (CommonMark plus
GitHub tables and strikethrough) gives the structure directly:

* ``#``/setext headings become headings with their level (``#`` = 0);
* paragraphs, block quotes and code blocks become text blocks (code keeps its lines);
* list items become ``- item`` (``1. item`` in ordered lists), nested ones indented, one block
  per item as unstructured's ``ListItem`` elements were;
* tables become table blocks with their cell texts (header row first);
* raw HTML blocks keep their text (and images' ``alt``) without the tags; ``<script>`` and
  ``<style>`` are dropped;
* inline markup keeps its text: link and image text stay, their URLs go;
* a document nested deeper than markdown-it follows (about 20 levels of lists and quotes) is
  read line by line instead (headings, paragraphs, code), so none of its text is lost;
* a link whose target is a template tag of a static-site generator (Jekyll's
  ``[text]({% page "/x" %})`` or ``[text]({{ site.baseurl }}/x)``) is still a link: the tag is
  dropped from the target before parsing (CommonMark allows no spaces there), so the text reads
  "text", not "[text](…)". Template tags elsewhere stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import lru_cache
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.parsing.blocks import Block
from ingest.parsing.textfast import iter_line_blocks

_TEMPLATE_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}")
_LINK_TARGET = re.compile(r"\]\(([^)\n]*\{[%{][^)\n]*)\)")
_SPACES = re.compile(r"[ \t\u00a0]+")


_MAX_NESTING = 40
"""Block nesting markdown-it follows (its default, 20, is ten levels of nested lists)."""


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    options = {"html": True, "maxNesting": _MAX_NESTING}
    return MarkdownIt("commonmark", options).enable(["table", "strikethrough"])


def markdown_blocks(text: str) -> list[Block]:
    """The blocks of a Markdown document (front matter already split off)."""
    text = _LINK_TARGET.sub(lambda m: "](" + _TEMPLATE_TAG.sub("", m.group(1)).strip() + ")", text)
    tokens = _parser().parse(text)
    if any(t.level >= _MAX_NESTING - 2 for t in tokens):
        # Nested deeper than markdown-it follows: it stops reading there and the rest would be
        # lost. Such a document is read line by line instead (ATX headings, paragraphs, code).
        return [replace(b, page=None) for b in iter_line_blocks(text.splitlines(), markdown=True)]
    return list(_blocks(tokens))


def _blocks(tokens: Sequence[Token]) -> Iterator[Block]:
    lists: list[list[int]] = []  # one entry per open list: [next number] or [] for bullets
    item_prefix: str | None = None  # set at a list item's open, used by its first paragraph
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind == "heading_open":
            text = _inline_text(tokens[i + 1])
            if text:
                yield Block("heading", text, level=int(tok.tag[1]) - 1)
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrGet("start") or 1) if kind == "ordered_list_open" else None
            lists.append([] if start is None else [start])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            indent = "  " * (len(lists) - 1)
            numbering = lists[-1]
            if numbering:
                item_prefix = f"{indent}{numbering[0]}. "
                numbering[0] += 1
            else:
                item_prefix = f"{indent}- "
        elif kind in ("inline", "fence", "code_block", "html_block"):
            text = _leaf_text(tok)
            if text:
                if item_prefix is not None:  # the item's first block carries its marker
                    text, item_prefix = item_prefix + text, None
                yield Block("text", text)
        elif kind == "table_open":
            end, rows = _table(tokens, i)
            if rows:
                yield Block("table", "\n".join(" ".join(r) for r in rows), rows=rows)
            i = end
        i += 1


def _leaf_text(tok: Token) -> str:
    if tok.type == "inline":
        return _inline_text(tok)
    if tok.type == "html_block":
        return _html_text(tok.content)
    code = tok.content.strip("\n")  # fence, code_block: keep the lines as written
    return code if code.strip() else ""


def _table(tokens: Sequence[Token], start: int) -> tuple[int, tuple[tuple[str, ...], ...]]:
    rows: list[tuple[str, ...]] = []
    row: list[str] = []
    i = start
    while tokens[i].type != "table_close":
        kind = tokens[i].type
        if kind == "tr_open":
            row = []
        elif kind == "inline":
            row.append(_inline_text(tokens[i]))
        elif kind == "tr_close" and any(row):
            rows.append(tuple(row))
        i += 1
    return i, tuple(rows)


def _inline_text(tok: Token) -> str:
    parts: list[str] = []
    for child in tok.children or ():
        kind = child.type
        if kind in ("text", "code_inline", "image"):  # an image's content is its alt text
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak" or (
            kind == "html_inline" and child.content.lower().startswith("<br")
        ):
            parts.append("\n")
    return _tidy("".join(parts))


class _TextOfHtml(HTMLParser):
    _SKIP = frozenset({"script", "style", "template"})
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag == "img" and not self._skipping:
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    return _tidy("".join(parser.parts))


def _tidy(text: str) -> str:
    """Runs of spaces as one, each line trimmed, empty lines dropped."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
