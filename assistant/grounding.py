"""Is a generated answer supported by its sources? Sentence by sentence, and number by number.

Each sentence of the answer (citation markers removed; sentences of fewer than three content
words, such as "Yes.", are not judged) is matched to its best supporting unit among the
sources the model was given (sentences, list items, table rows: :mod:`assistant.sentences`),
scored by meaning (embedding cosine) and words (the share of the sentence's content words the
unit contains). A sentence whose best match scores below ``min_match`` is *unsupported*: the UI
marks it and the audit record counts it (``support_ratio``).

Numbers are checked on their own, because embeddings barely see them ("75 EUR" and "150 EUR"
are near neighbours): every number the answer states must appear in a source it cites (in any
source given to it when it cites none), else it is listed in ``unsupported_numbers``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.sentences import split_sentences, split_units
from assistant.types import Grounding, RetrievedChunk
from ingest.encoding.base import Embedder
from ingest.encoding.sparse import tokenize

_MARKER = re.compile(r"\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")
MIN_TERMS = 3


@dataclass(frozen=True)
class Match:
    sentence: str
    chunk: int | None
    span: tuple[int, int] | None
    score: float


def numbers(text: str) -> set[str]:
    """Numbers in ``text``, normalised (thousands separators removed, ``1.50`` -> ``1.5``)."""
    out = set()
    for whole, frac in _NUMBER.findall(text):
        value = whole.replace(",", "")
        frac = frac.rstrip("0")
        out.add(f"{value}.{frac}" if frac else value)
    return out


def answer_sentences(answer: str) -> list[str]:
    clean = _MARKER.sub("", answer)
    return [clean[a:b].strip() for a, b in split_sentences(clean)]


def check(
    answer: str,
    sources: Sequence[RetrievedChunk],
    cited: Sequence[int],
    embedder: Embedder,
    *,
    min_match: float,
) -> tuple[Grounding, list[Match]]:
    """Grounding of ``answer`` over ``sources`` (``cited``: 0-based indexes it cites)."""
    judged = [s for s in answer_sentences(answer) if len(tokenize(s)) >= MIN_TERMS]
    units = [(ci, u) for ci, c in enumerate(sources) for u in split_units(c.text)]
    matches: list[Match] = []
    if judged and units:
        s_vecs = embedder.embed_documents(judged)
        u_vecs = embedder.embed_documents([u.text for _, u in units])
        u_terms = [set(tokenize(u.text)) for _, u in units]
        for sentence, s_vec in zip(judged, s_vecs, strict=True):
            terms = set(tokenize(sentence))
            best, best_i = -1.0, -1
            for i, u_vec in enumerate(u_vecs):
                cos = sum(a * b for a, b in zip(s_vec, u_vec, strict=False))
                overlap = len(terms & u_terms[i]) / max(len(terms), 1)
                score = 0.6 * cos + 0.4 * overlap
                if score > best:
                    best, best_i = score, i
            ci, unit = units[best_i]
            matches.append(Match(sentence, ci, (unit.start, unit.end), best))
    else:
        matches = [Match(s, None, None, 0.0) for s in judged]
    unsupported = tuple(m.sentence for m in matches if m.score < min_match)
    pool = [sources[i].text for i in cited] if cited else [c.text for c in sources]
    known = set().union(*(numbers(t) for t in pool)) if pool else set()
    stated = numbers(_MARKER.sub("", answer))
    ratio = (len(matches) - len(unsupported)) / len(matches) if matches else 1.0
    grounding = Grounding(
        support_ratio=ratio,
        sentences=len(matches),
        unsupported=unsupported,
        unsupported_numbers=tuple(sorted(stated - known, key=lambda n: (len(n), n))),
    )
    return grounding, [m for m in matches if m.score >= min_match]
