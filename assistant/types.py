"""Value types the assistant hands to its callers (CLI, UI, evaluations)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RetrievedChunk:
    """One chunk a user may read, as ranked by the retriever (``rank`` starts at 1)."""

    chunk_id: str
    doc_id: str
    path: str
    source: str
    section: str | None
    title: str | None
    page: int | None
    text: str
    score: float
    rank: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "section": self.section,
            "page": self.page,
            "score": round(self.score, 6),
            "chunk_id": self.chunk_id,
            "text": self.text,
        }


@dataclass(frozen=True)
class Citation:
    """Source ``[n]`` of an answer: a chunk the answer actually rests on.

    ``snippet`` is the supporting sentence(s) the answer quotes or rests on; ``text`` is the
    whole chunk and ``highlights`` the ``(start, end)`` character spans of the supporting
    sentences inside ``text``, so a reader can check the claim in its context."""

    n: int
    path: str
    source: str
    section: str | None
    page: int | None
    snippet: str
    doc_id: str
    chunk_id: str
    text: str = ""
    highlights: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, n: int, chunk: RetrievedChunk, spans: Sequence[tuple[int, int]]) -> Citation:
        """Citation ``[n]`` of ``chunk``, quoting and highlighting ``spans`` of its text."""
        ordered = tuple(sorted(set(spans)))
        snippet = " … ".join(" ".join(chunk.text[a:b].split()) for a, b in ordered)
        return cls(
            n=n,
            path=chunk.path,
            source=chunk.source,
            section=chunk.section,
            page=chunk.page,
            snippet=snippet,
            doc_id=chunk.doc_id,
            chunk_id=chunk.chunk_id,
            text=chunk.text,
            highlights=ordered,
        )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["highlights"] = [list(span) for span in self.highlights]
        return out


@dataclass(frozen=True)
class SourceRef:
    """A chunk that was retrieved (the user may read it) but that the answer does not use."""

    path: str
    source: str
    section: str | None
    page: int | None
    doc_id: str
    chunk_id: str

    @classmethod
    def of(cls, chunk: RetrievedChunk) -> SourceRef:
        return cls(
            path=chunk.path,
            source=chunk.source,
            section=chunk.section,
            page=chunk.page,
            doc_id=chunk.doc_id,
            chunk_id=chunk.chunk_id,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Grounding:
    """How well a generated answer is supported by its sources (extracts: always 1.0).

    ``support_ratio``: share of the answer's sentences matched to a supporting source sentence;
    ``unsupported``: the answer sentences with no support (shown marked in the UI);
    ``unsupported_numbers``: numbers the answer states that no cited source contains."""

    support_ratio: float
    sentences: int
    unsupported: tuple[str, ...] = ()
    unsupported_numbers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "support_ratio": round(self.support_ratio, 4),
            "sentences": self.sentences,
            "unsupported": list(self.unsupported),
            "unsupported_numbers": list(self.unsupported_numbers),
        }


@dataclass
class Answer:
    """What the assistant returns. ``mode`` says how the text was made: ``extractive`` (quoted
    sentences from the sources, no model) or ``generative`` (an LLM, grounding-checked)."""

    answer: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    reason: str | None = None
    reason_code: str | None = None
    audit_id: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    abstained: bool = False
    standalone_question: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    mode: str = "extractive"
    also_retrieved: list[SourceRef] = field(default_factory=list)
    grounding: Grounding | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "mode": self.mode,
            "citations": [c.to_json() for c in self.citations],
            "also_retrieved": [s.to_json() for s in self.also_retrieved],
            "grounding": self.grounding.to_json() if self.grounding else None,
            "refused": self.refused,
            "abstained": self.abstained,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "audit_id": self.audit_id,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "tokens": dict(self.tokens),
        }
