"""The answerer protocol and what an answerer hands back to the request pipeline.

An answerer turns the question and the chunks the user may read into answer text with
citations. It never sees a chunk the retriever did not return for this user, and it never adds
a citation to something it did not use. It streams: text pieces, then one :class:`Draft`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from assistant.prompt import Turn
from assistant.types import Citation, Grounding, RetrievedChunk, SourceRef

ABSTAIN_MESSAGE = (
    "The documents you have access to do not answer this question, so I won't guess. "
    "Try rephrasing it, or ask someone who can see the relevant documents."
)


@dataclass
class Draft:
    """The answerer's result before the pipeline screens, audits and returns it."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    also_retrieved: list[SourceRef] = field(default_factory=list)
    abstained: bool = False
    reason: str | None = None
    reason_code: str | None = None
    grounding: Grounding | None = None
    support: float = 0.0
    """The evidence score the abstention decision used (extractive) or the support ratio."""
    given: list[RetrievedChunk] = field(default_factory=list)
    """The chunks the answerer worked from (audited as ``given_to_model``)."""
    tokens: dict[str, int] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Answerer(Protocol):
    """Turns a question and permitted chunks into a cited answer (or an abstention)."""

    mode: str
    """``extractive`` or ``generative`` (shown in the UI and the audit record)."""

    @property
    def model_id(self) -> str:
        """What produced the text: the LLM's name, or the extractive scorer and its model."""

    def warm_up(self) -> None:
        """Load what the answerer needs (models) now, instead of on the first question."""

    def answer(
        self, question: str, chunks: Sequence[RetrievedChunk], history: Sequence[Turn] = ()
    ) -> Iterator[str | Draft]:
        """Text pieces as they are ready, then exactly one :class:`Draft`."""


def abstention(chunks: Sequence[RetrievedChunk], support: float) -> Draft:
    """The answer when no permitted passage carries the question: say so, and list the closest
    documents as "also retrieved" so the user can look for themselves."""
    return Draft(
        text=ABSTAIN_MESSAGE,
        also_retrieved=[SourceRef.of(c) for c in chunks],
        abstained=True,
        reason="no passage you may read answers the question",
        reason_code="answer.no_support",
        support=support,
        given=list(chunks),
        details={"support": round(support, 4)},
    )
