"""Value types the assistant hands to its callers (CLI, UI, evaluations)."""

from __future__ import annotations

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
    """Source ``[n]`` as numbered in the prompt the model saw."""

    n: int
    path: str
    source: str
    section: str | None
    page: int | None
    snippet: str
    doc_id: str
    chunk_id: str


@dataclass
class Answer:
    answer: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    reason: str | None = None
    reason_code: str | None = None
    audit_id: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    cited_by_model: bool = False
    abstained: bool = False
    standalone_question: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "citations": [asdict(c) for c in self.citations],
            "cited_by_model": self.cited_by_model,
            "refused": self.refused,
            "abstained": self.abstained,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "audit_id": self.audit_id,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "tokens": dict(self.tokens),
        }
