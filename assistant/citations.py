"""Which numbered sources an answer cites.

Only chunks that were in the prompt can be cited: numbers outside ``1..n`` are ignored. When a
model cites nothing (the small base model rarely follows the citation rule) the response lists
every source the model was given and says so with ``cited_by_model = False``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.types import Citation, RetrievedChunk

_BRACKET = re.compile(r"\[\s*((?:sources?\s*)?\d+(?:\s*[,;&]\s*(?:sources?\s*)?\d+)*)\s*\]", re.I)
_NUMBER = re.compile(r"\d+")
SNIPPET_CHARS = 240


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers referenced as ``[2]``, ``[1, 3]`` or ``[source 2]``, in first-use order."""
    seen: list[int] = []
    for match in _BRACKET.finditer(answer):
        for num in _NUMBER.findall(match.group(1)):
            n = int(num)
            if 1 <= n <= n_sources and n not in seen:
                seen.append(n)
    return seen


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def to_citation(n: int, chunk: RetrievedChunk) -> Citation:
    return Citation(
        n=n,
        path=chunk.path,
        source=chunk.source,
        section=chunk.section,
        page=chunk.page,
        snippet=snippet(chunk.text),
        doc_id=chunk.doc_id,
        chunk_id=chunk.chunk_id,
    )


def build_citations(answer: str, given: Sequence[RetrievedChunk]) -> tuple[list[Citation], bool]:
    """Citations for ``answer`` over the sources ``given`` to the model (numbered from 1)."""
    used = cited_numbers(answer, len(given))
    if used:
        return [to_citation(n, given[n - 1]) for n in sorted(used)], True
    return [to_citation(n, c) for n, c in enumerate(given, start=1)], False
