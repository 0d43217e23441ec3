"""The extractive answerer: the answer is sentences quoted verbatim from the permitted chunks.

No generative model is involved, so every word of an answer is traceable to a source, nothing is
invented, and answering takes milliseconds. Every unit of the permitted chunks is scored against
the question (:mod:`assistant.evidence`: meaning, words, rank).

The answer is the best unit plus the units it cannot be read without (a list's lead-in line, a
table's header row, the sentence a "This ..." refers back to), and the next units that
score nearly as well (at most three; a short sentence brings the one after it). Each quote is
framed by its document title and cited ``[n]``.

Abstention comes from the evidence, not from one cosine threshold: when no permitted unit
carries enough of the question (``support`` below ``answer.min_support``, calibrated on the
development set; docs/assistant.md shows the trade-off), the answer says the documents do not
answer it, and lists the closest documents as "also retrieved".
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence

from assistant.answerers.base import Draft, abstention
from assistant.evidence import Evidence, Scored, Tuning
from assistant.prompt import Turn
from assistant.sentences import Unit, split_units
from assistant.types import Citation, Grounding, RetrievedChunk, SourceRef
from ingest.encoding.base import Embedder

_SHORT_WORDS = 20


class ExtractiveAnswerer:
    """Quotes the sentences that answer the question; see the module docstring."""

    mode = "extractive"

    def __init__(self, embedder: Embedder, tuning: Tuning | None = None) -> None:
        self.evidence = Evidence(embedder, tuning)
        self._settings = self.evidence.tuning

    @property
    def model_id(self) -> str:
        return f"extractive/{self.evidence.embedder.model_id}"

    def warm_up(self) -> None:
        self.evidence.embedder.embed_query("warm up")

    # -- selection ---------------------------------------------------------------------------
    def select(self, scored: list[Scored]) -> list[Scored]:
        """The best whole unit and the next ones that score nearly as well (at most
        ``max_units``); fragments and heading lines are never quoted on their own."""
        whole = _distinct(
            [s for s in scored if not s.unit.fragment and s.unit.kind != "heading"],
            self._settings.max_units,
        )
        if not whole:
            return []
        floor = whole[0].score * self._settings.extra_unit_ratio
        return [s for s in whole[: self._settings.max_units] if s.score >= floor]

    # -- the answer --------------------------------------------------------------------------
    def answer(
        self, question: str, chunks: Sequence[RetrievedChunk], history: Sequence[Turn] = ()
    ) -> Iterator[str | Draft]:
        chunks = list(chunks)
        scored = self.evidence.score(question, chunks) if chunks else []
        support = self.evidence.support(scored[0]) if scored else 0.0
        if support < self._settings.min_support or not scored:
            draft = abstention(chunks, support)
            yield draft.text
            yield draft
            return
        chosen = self.select(scored)
        by_chunk: dict[int, list[Unit]] = {}
        for s in chosen:
            by_chunk.setdefault(s.chunk, []).append(s.unit)
        order = [s.chunk for s in chosen]  # sources in the order of their best unit
        seen: set[int] = set()
        citations: list[Citation] = []
        parts: list[str] = []
        for ci in order:
            if ci in seen:
                continue
            seen.add(ci)
            chunk = chunks[ci]
            spans = _with_context(chunk.text, by_chunk[ci])
            n = len(citations) + 1
            citation = Citation.of(n, chunk, spans)
            citations.append(citation)
            parts.append(_frame(chunk, citation.snippet, n, first=not parts))
        text = "\n\n".join(parts)
        yield text
        yield Draft(
            text=text,
            citations=citations,
            also_retrieved=[SourceRef.of(c) for i, c in enumerate(chunks) if i not in seen],
            grounding=Grounding(support_ratio=1.0, sentences=len(chosen)),
            support=support,
            given=chunks,
            details={"support": round(support, 4)},
        )


def _normal(text: str) -> str:
    return " ".join(text.replace("- ", " ").split()).casefold()


def _distinct(scored: list[Scored], limit: int) -> list[Scored]:
    """The first ``limit`` units, best first, without units that repeat one already kept:
    overlapping chunks and pages that repeat a paragraph would otherwise quote the same
    sentence twice."""
    kept: list[Scored] = []
    texts: list[str] = []
    for s in scored:
        if len(kept) >= limit:
            break
        mine = _normal(s.unit.text)
        if any(mine in other or other in mine for other in texts):
            continue
        kept.append(s)
        texts.append(mine)
    return kept


def _with_context(text: str, units: list[Unit]) -> list[tuple[int, int]]:
    """Spans to quote for ``units``: each with the lead-in or header it needs and the sentence
    it refers back to, merged where they touch, in text order."""
    all_units = split_units(text)
    index = {(u.start, u.end): i for i, u in enumerate(all_units)}
    spans: set[tuple[int, int]] = set()
    for unit in units:
        spans.add((unit.start, unit.end))
        if unit.lead_in is not None:
            spans.add(unit.lead_in)
        i = index.get((unit.start, unit.end))
        if i is None:
            continue
        nxt = all_units[i + 1] if i + 1 < len(all_units) else None
        if (
            nxt is not None
            and len(unit.text.split()) < _SHORT_WORDS
            and nxt.block == unit.block
            and not nxt.suspicious
            and nxt.kind == unit.kind
        ):  # a short sentence rarely says everything: quote the one after it too
            spans.add((nxt.start, nxt.end))
        if (unit.refers_back or unit.fragment) and i > 0:
            prev = all_units[i - 1]
            if prev.block == unit.block and prev.kind != "heading" and not prev.suspicious:
                spans.add((prev.start, prev.end))
        if unit.text.rstrip().endswith(":"):  # a lead-in: quote what it introduces
            for follower in all_units[i + 1 : i + 6]:
                if follower.lead_in != (unit.start, unit.end):
                    break
                spans.add((follower.start, follower.end))
    return _merge(sorted(spans), text)


def _merge(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        touching = merged and (start < merged[-1][1] or not text[merged[-1][1] : start].strip())
        if touching:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def where(chunk: RetrievedChunk) -> str:
    """ "Title (section)": the document's title and the most specific heading of the chunk."""
    title = _plain(chunk.title or chunk.path.rsplit("/", 1)[-1])
    title = title[:1].upper() + title[1:]
    section = _plain((chunk.section or "").split(" > ")[-1].strip())
    if section and section.casefold() not in title.casefold():
        return f"{title} ({section})"
    return title


_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def _plain(label: str) -> str:
    """A title or heading as text: Markdown titles may carry inline HTML ("<em>before</em>")
    and entities ("Q&amp;A")."""
    return html.unescape(_TAG.sub("", label)).strip()


def _frame(chunk: RetrievedChunk, quote: str, n: int, *, first: bool) -> str:
    verb = "says" if first else "also says"
    return f"{where(chunk)} {verb}: “{quote}” [{n}]"
