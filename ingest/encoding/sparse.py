"""Lexical (sparse) vectors: hashed tokens with BM25 term-frequency weights.

The scheme splits BM25 between the client and the engine, the same way on Edge and on a Qdrant
server:

- **Tokens**: NFKC-normalised, case-folded Unicode words (letters and digits; ``_`` splits),
  a small English stopword list, single letters (possessive ``'s``) and tokens longer than
  :data:`MAX_TOKEN_LEN` dropped, and a conservative plural stemmer (``policies`` -> ``policy``,
  ``expenses`` -> ``expense``).
- **Term ids**: the first 4 bytes of ``blake2b(token)`` as an unsigned 32-bit integer — stable
  across processes, machines and Python versions (never the salted built-in ``hash()``).
- **Document values**: the BM25 term-frequency saturation
  ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / AVG_DOC_LEN))`` with ``k1 = 1.2``, ``b = 0.75``.
  The average length is a fixed constant (:data:`AVG_DOC_LEN`, tokens after stopwords of a
  typical chunk) rather than a corpus statistic, so a point's vector never changes when other
  documents are added.
- **Query values**: 1.0 per unique query term.
- **IDF** is applied by the engine (the ``lexical`` vector is created with the IDF modifier), so
  the dot product of query and document vectors is the BM25 score.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter

from ingest.model import SparseVector

K1 = 1.2
B = 0.75
# Tokens (after stopword removal) in a typical chunk: the default chunker cuts at ~1,200
# characters, ~190 words, of which about a third are stopwords.
AVG_DOC_LEN = 128.0
MAX_TOKEN_LEN = 40

_STOPWORD_TEXT = """
a an and are as at be but by for from has have if in into is it its of on or our so such that
the their then there these they this to was were will with we you your i he she his her them
than not no do does did been being can could would should may might must shall which who whom
what when where why how all any each other some only own same too very just also about over
under again further once here both few more most out up down off
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_KEEP_S = ("ss", "us", "is", "ous")


def _stem(token: str) -> str:
    """Strip plural endings only; anything cleverer hurts exact-term matching more than it helps."""
    if len(token) <= 3 or token.isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("sses"):
        return token[:-2]
    if token.endswith(("xes", "ches", "shes")):
        return token[:-2]
    if token.endswith("s") and not token.endswith(_KEEP_S):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Deterministic tokens of ``text`` in order (duplicates kept)."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for word in _WORD.findall(normal):
        if word in STOPWORDS or len(word) > MAX_TOKEN_LEN or (len(word) == 1 and word.isalpha()):
            continue
        out.append(_stem(word))
    return out


def token_id(token: str) -> int:
    """Stable uint32 id of a token."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


def _term_counts(tokens: list[str]) -> Counter[int]:
    return Counter(token_id(t) for t in tokens)


def encode_document(text: str) -> SparseVector:
    """BM25-saturated term frequencies of ``text`` (IDF comes from the engine)."""
    tokens = tokenize(text)
    if not tokens:
        return SparseVector(indices=[], values=[])
    norm = K1 * (1.0 - B + B * len(tokens) / AVG_DOC_LEN)
    counts = sorted(_term_counts(tokens).items())
    return SparseVector(
        indices=[i for i, _ in counts],
        values=[tf * (K1 + 1.0) / (tf + norm) for _, tf in counts],
    )


def encode_query(text: str) -> SparseVector:
    """One unit weight per unique query term."""
    ids = sorted(set(_term_counts(tokenize(text))))
    return SparseVector(indices=ids, values=[1.0] * len(ids))
