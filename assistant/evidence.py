"""Evidence: how strongly each sentence of the permitted chunks carries the question.

For each retrieved chunk the text is split into units (sentences, list items, table rows:
:mod:`assistant.sentences`) and every unit is scored against the question:

- **meaning**: cosine similarity of the question and the unit (with its document title and
  section as context) under the embedding model the retriever already loaded;
- **words**: the share of the question's content words (conversational filler removed, IDF
  weighted over the candidate units) that the unit contains, and the share its section heading
  and document title contain;
- **rank**: a small prior for units of higher-ranked chunks.

``support`` (a mix of the best unit's meaning and words scores) is what the answerers abstain
on: when no permitted unit carries enough of the question, the documents do not answer it. Its
threshold ``min_support`` is calibrated on the development split of the employee-phrased set
(docs/assistant.md shows the trade-off curve).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.sentences import Unit, split_units
from assistant.types import RetrievedChunk
from ingest.encoding.base import Embedder
from ingest.encoding.sparse import tokenize

# Words that say how someone asks, not what they ask about.
FILLER = frozenset(
    """
    hi hey hello please thanks thank know knows need needs want wants wonder wondering question
    anyone somebody someone tell help get gets got going like really just actually basically
    able okay ok guess think maybe thing things stuff me my mine myself im ive id i'm i've i'd
    we're us let lets sure quick quickly exactly still right now today yet ever even much many
    well way also anything something everything around kind sort supposed allowed
    """.split()  # noqa: SIM905
)
_CACHE_CHUNKS = 4096


_ASKS_NUMBER = re.compile(
    r"\b(?:how (?:many|much|long|often|soon|far|fast|quickly|early|late)|when|what time|"
    r"deadline|by when|at least|at most|least|most|limit|maximum|minimum|max|min|rate|cost)\b",
    re.I,
)
_ASKS_CONTACT = re.compile(
    r"\b(?:who|whom|where|which (?:channel|email|address|team|form|site|tool|system|app)|"
    r"email|contact|channel|link|url|address|website|ask)\b",
    re.I,
)
_HAS_NUMBER = re.compile(r"\d")
_HAS_CONTACT = re.compile(r"@|#\w|https?://|\.gov\b|\.com\b|\.org\b")


@dataclass(frozen=True)
class Tuning:
    """Weights of the unit score and of the evidence (tuned on the development split of
    bench/devset/handbook18f_employee.jsonl with ``python -m bench.answers --split dev``)."""

    dense_weight: float = 1.0
    lexical_weight: float = 0.5
    heading_weight: float = 0.15
    rank_weight: float = 0.0
    fragment_penalty: float = 0.3
    short_penalty: float = 0.1
    """Units of fewer than six words rarely answer anything on their own (three times the
    penalty under four words: "- Photoshop")."""
    answer_type_weight: float = 0.2
    """Bonus for a unit holding what the question asks for: a number for "how many / how
    long / when", an address, channel or link for "who / where / which email"."""
    extra_unit_ratio: float = 0.8
    max_units: int = 3
    support_dense_weight: float = 0.6
    min_support: float = 0.26


@dataclass(frozen=True)
class Scored:
    chunk: int  # index into the chunks
    unit: Unit
    score: float
    dense: float
    lexical: float
    terms: frozenset[str]


def content_terms(text: str) -> list[str]:
    """The question's content words: tokens without stopwords and conversational filler."""
    return [t for t in tokenize(text) if t not in FILLER]


class _UnitCache:
    """Unit vectors per chunk (chunk id + text), so a popular chunk is embedded once."""

    def __init__(self, size: int = _CACHE_CHUNKS) -> None:
        self._data: OrderedDict[tuple[str, int], list[list[float]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> list[list[float]] | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: tuple[str, int], vectors: list[list[float]]) -> None:
        with self._lock:
            self._data[key] = vectors
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=False))


def _section_label(chunk: RetrievedChunk) -> str:
    parts = [p for p in (chunk.title, chunk.section) if p]
    return " — ".join(parts)


class Evidence:
    """Scores the units of permitted chunks against a question (see the module docstring)."""

    def __init__(self, embedder: Embedder, tuning: Tuning | None = None) -> None:
        self._embedder = embedder
        self.tuning = tuning or Tuning()
        self._cache = _UnitCache()

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _unit_vectors(
        self, chunks: Sequence[RetrievedChunk], per_chunk: list[list[Unit]]
    ) -> list[list[list[float]]]:
        """Unit vectors of every chunk: cached ones reused, the rest embedded in one batch (one
        call per question rather than one per chunk: the model's per-call overhead counts when
        each chunk has a dozen short units)."""
        keys = [(c.chunk_id, hash(c.text)) for c in chunks]
        out: list[list[list[float]] | None] = [self._cache.get(k) for k in keys]
        texts: list[str] = []
        spans: list[tuple[int, int, int]] = []
        for ci, (chunk, units) in enumerate(zip(chunks, per_chunk, strict=True)):
            if out[ci] is not None or not units:
                continue
            label = _section_label(chunk)
            start = len(texts)
            texts.extend(f"{label}: {u.text}" if label else u.text for u in units)
            spans.append((ci, start, len(texts)))
        vectors = self._embedder.embed_documents(texts) if texts else []
        for ci, start, end in spans:
            mine = vectors[start:end]
            out[ci] = mine
            self._cache.put(keys[ci], mine)
        return [v if v is not None else [] for v in out]

    def score(self, question: str, chunks: Sequence[RetrievedChunk]) -> list[Scored]:
        """Every unit of every chunk, scored against ``question`` (best first)."""
        cfg = self.tuning
        q_terms = set(content_terms(question))
        per_chunk = [split_units(c.text) for c in chunks]
        unit_terms = [[frozenset(tokenize(u.text)) for u in units] for units in per_chunk]
        label_terms = [frozenset(tokenize(_section_label(c))) for c in chunks]
        n_units = sum(len(u) for u in per_chunk) or 1
        df: dict[str, int] = {}
        for terms_of_chunk in unit_terms:
            for terms in terms_of_chunk:
                for t in terms & q_terms:
                    df[t] = df.get(t, 0) + 1
        idf = {t: math.log(1.0 + (n_units + 1) / (df.get(t, 0) + 0.5)) for t in q_terms}
        total = sum(idf.values()) or 1.0
        q_vec = self._embedder.embed_query(question)
        wants_number = bool(_ASKS_NUMBER.search(question))
        wants_contact = bool(_ASKS_CONTACT.search(question))
        all_vectors = self._unit_vectors(chunks, per_chunk)
        out: list[Scored] = []
        for ci, (units, vectors) in enumerate(zip(per_chunk, all_vectors, strict=True)):
            if not units:
                continue
            label_share = sum(idf[t] for t in q_terms & label_terms[ci]) / total
            prior = 1.0 / (1.0 + ci)
            for unit, vec, terms in zip(units, vectors, unit_terms[ci], strict=True):
                if unit.suspicious:
                    continue
                dense = _dot(q_vec, vec)
                lexical = sum(idf[t] for t in q_terms & terms) / total
                score = (
                    cfg.dense_weight * dense
                    + cfg.lexical_weight * lexical
                    + cfg.heading_weight * label_share
                    + cfg.rank_weight * prior
                )
                if unit.fragment or unit.kind == "heading":
                    score -= cfg.fragment_penalty
                words = len(unit.text.split())
                if words < 6:
                    score -= cfg.short_penalty * (3 if words < 4 else 1)
                if (wants_number and _HAS_NUMBER.search(unit.text)) or (
                    wants_contact and _HAS_CONTACT.search(unit.text)
                ):
                    score += cfg.answer_type_weight
                out.append(Scored(ci, unit, score, dense, lexical, terms | label_terms[ci]))
        out.sort(key=lambda s: s.score, reverse=True)
        return out

    def support(self, best: Scored) -> float:
        """Evidence that the best unit carries the question's content."""
        cfg = self.tuning
        return cfg.support_dense_weight * best.dense + (1 - cfg.support_dense_weight) * best.lexical
