"""Chunk text -> the units an answer can quote: sentences, list items, table rows.

A chunk's text is ``<title> — <section path>`` on its first line, then the body: paragraphs,
list items (``- ...``, ``1. ...``), heading lines of merged sections and table rows
(``cell | cell | cell``, the first row of a table being its header). Each unit keeps its
character span in the chunk text, so a citation can highlight exactly what was quoted.

Sentence boundaries are found with a rule set that knows common abbreviations ("e.g.", "U.S.",
"No."), decimals ("1.5"), initials and ellipses; it never splits inside brackets or quotes of a
few words. A unit also records what a reader needs to understand it alone: the lead-in line of
a list ("You can claim:"), a table's header row, and whether it continues the previous
sentence ("This ...", "However, ...") or is a cut-off fragment (a split chunk's overlap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

UnitKind = Literal["sentence", "item", "row", "heading"]

_ABBREVIATIONS = frozenset(
    {
        "e.g",
        "i.e",
        "etc",
        "vs",
        "cf",
        "approx",
        "no",
        "nos",
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "corp",
        "dept",
        "est",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
        "a.m",
        "p.m",
        "min",
        "max",
        "ext",
        "al",
    }
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•▪◦–]|\d{1,3}[.)]|[a-z][.)])\s+", re.I)
_HEADING_MD = re.compile(r"^\s*#{1,6}\s+")
_REFERRING_START = re.compile(
    r"^(?:this|that|these|those|it|its|they|them|their|such|however|also|otherwise|then|"
    r"in that case|if so|if not|in addition|additionally|for example|for instance|but|and|or|"
    r"he|she|there)\b",
    re.I,
)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|"
    r"earlier|your)\s+(?:instructions|rules|prompts?)\b|\byou are now\b|\bsystem prompt\b|"
    r"\b(?:safety|previous) rules no longer apply\b|\bas an ai\b|\bnew instructions\s*:",
    re.I,
)
_END = frozenset(".!?")
_LONG_ITEM = 240
_CLOSERS = "\"'”’)]»"


@dataclass(frozen=True)
class Unit:
    """One quotable piece of a chunk."""

    text: str
    start: int
    end: int
    kind: UnitKind
    block: int
    """Index of the paragraph/list/table the unit belongs to (neighbours share it)."""
    lead_in: tuple[int, int] | None = None
    """Span of the line that introduces this list item or table row (a list's lead-in line,
    a table's header row)."""
    refers_back: bool = False
    fragment: bool = False
    """Not a whole sentence: the tail of a split chunk's overlap, a line without a verb."""
    suspicious: bool = False
    """Its paragraph addresses an AI ("ignore previous instructions", "print your system
    prompt"): a planted prompt injection, never quoted as an answer."""


def _is_boundary(text: str, i: int) -> bool:
    """Is ``text[i]`` (one of ``.!?``) the end of a sentence?"""
    ch = text[i]
    j = i + 1
    while j < len(text) and text[j] in _CLOSERS:
        j += 1
    if j < len(text) and not text[j].isspace():
        return False  # "e.g.x", "1.5", "v2.0", a URL
    k = j
    while k < len(text) and text[k].isspace():
        k += 1
    if k >= len(text):
        return True
    nxt = text[k]
    if ch in "!?":
        return True
    # ". " followed by a lower-case word continues the sentence ("approx. five days")
    if nxt.islower():
        return False
    word = re.search(r"([A-Za-z][A-Za-z.]*)$", text[:i])
    if word:
        token = word.group(1).lower().rstrip(".")
        if token in _ABBREVIATIONS:
            return False
        if len(token) == 1 and token.isalpha():  # an initial: "J. Smith"
            return False
    return i > 0 and text[i - 1] != "."  # an ellipsis ends nothing by itself


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text`` (absolute: shifted by ``offset``)."""
    spans: list[tuple[int, int]] = []
    start = 0
    n = len(text)
    while start < n and text[start].isspace():
        start += 1
    i = start
    while i < n:
        if text[i] in _END and _is_boundary(text, i):
            end = i + 1
            while end < n and text[end] in _CLOSERS:
                end += 1
            if text[start:end].strip():
                spans.append((offset + start, offset + end))
            start = end
            while start < n and text[start].isspace():
                start += 1
            i = start
            continue
        i += 1
    if start < n and text[start:].strip():
        end = n
        while end > start and text[end - 1].isspace():
            end -= 1
        spans.append((offset + start, offset + end))
    return spans


def _starts_like_a_sentence(text: str) -> bool:
    first = text.lstrip()[:1]
    return bool(first) and (first.isupper() or first.isdigit() or first in "\"'“‘([*$€£#@")


def _is_heading(line: str, *, at_block_start: bool) -> bool:
    """A Markdown heading, or a short line without final punctuation opening a block (the
    heading line of a merged section)."""
    if _HEADING_MD.match(line):
        return True
    return (
        at_block_start
        and len(line.split()) <= 8
        and line[-1] not in ".!?:;,"
        and not _LIST_ITEM.match(line)
    )


def body_start(text: str) -> int:
    """Where the body begins: after the ``<title> — <section>`` context line."""
    newline = text.find("\n")
    return len(text) if newline < 0 else newline + 1


def split_units(text: str) -> list[Unit]:
    """The quotable units of one chunk's ``text`` (the context line excluded), in order."""
    units: list[Unit] = []
    pos = body_start(text)
    block = 0
    lead_in: tuple[int, int] | None = None
    table_header: tuple[int, int] | None = None
    first_line = True
    previous_kind: str | None = None
    for raw_line in text[pos:].split("\n"):
        line_start, line_end = pos, pos + len(raw_line)
        pos = line_end + 1
        stripped = raw_line.strip()
        if not stripped:
            block += 1
            if previous_kind not in ("sentence", "item"):
                lead_in = None  # a list's lead-in outlives the blank lines between its items
            table_header = None
            previous_kind = None
            first_line = False
            continue
        lead = len(raw_line) - len(raw_line.lstrip())
        s, e = line_start + lead, line_start + lead + len(stripped)
        if " | " in stripped:
            if table_header is None:
                table_header = (s, e)
                units.append(Unit(stripped, s, e, "row", block))
            else:
                units.append(Unit(stripped, s, e, "row", block, lead_in=table_header))
            previous_kind = "row"
            first_line = False
            continue
        table_header = None
        if _is_heading(stripped, at_block_start=previous_kind is None):
            lead_in = None
            units.append(Unit(stripped, s, e, "heading", block, fragment=True))
            previous_kind = "heading"
            first_line = False
            continue
        if _LIST_ITEM.match(stripped):
            # a long item is several sentences: each is a unit (the first keeps the marker)
            spans = split_sentences(raw_line, line_start) if len(stripped) > _LONG_ITEM else []
            for n, (a, b) in enumerate(spans or [(s, e)]):
                units.append(
                    Unit(
                        text[a:b],
                        a,
                        b,
                        "item",
                        block,
                        lead_in=lead_in,
                        refers_back=n > 0 and bool(_REFERRING_START.match(text[a:b])),
                    )
                )
            previous_kind = "item"
            first_line = False
            continue
        # a paragraph line: its sentences
        spans = split_sentences(raw_line, line_start)
        for n, (a, b) in enumerate(spans):
            sentence = text[a:b]
            fragment = first_line and n == 0 and not _starts_like_a_sentence(sentence)
            units.append(
                Unit(
                    sentence,
                    a,
                    b,
                    "sentence",
                    block,
                    refers_back=bool(_REFERRING_START.match(sentence)),
                    fragment=fragment,
                )
            )
        last = units[-1] if spans else None
        lead_in = (last.start, last.end) if last and last.text.endswith(":") else None
        previous_kind = "sentence"
        first_line = False
    return _mark_injections(text, units)


def looks_like_injection(text: str) -> bool:
    """Does ``text`` address an AI assistant's instructions?"""
    return bool(_INJECTION.search(text))


def _mark_injections(text: str, units: list[Unit]) -> list[Unit]:
    planted = {u.block for u in units if looks_like_injection(u.text)}
    if not planted:
        return units
    return [replace(u, suspicious=True) if u.block in planted else u for u in units]
