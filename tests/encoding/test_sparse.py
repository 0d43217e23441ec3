"""The lexical encoder: deterministic tokens, stable ids, BM25 TF weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.encoding import sparse
from ingest.encoding.sparse import (
    AVG_DOC_LEN,
    K1,
    B,
    encode_document,
    encode_query,
    token_id,
    tokenize,
)


def test_tokenize_lowercases_unicode_words_and_drops_stopwords() -> None:
    assert tokenize("The VPN-Client and the Café's Wi‑Fi!") == ["vpn", "client", "café", "wi", "fi"]
    assert tokenize("Straße ÉCOLE naïve") == ["strasse", "école", "naïve"]
    assert tokenize("snake_case 2026 x" + "a" * 50) == ["snake", "case", "2026"]
    assert tokenize("the of and to") == []


def test_plural_stemming_is_conservative() -> None:
    assert tokenize("policies expenses laptops boxes matches") == [
        "policy",
        "expense",
        "laptop",
        "box",
        "match",
    ]
    assert tokenize("process status analysis bus gas") == [
        "process",
        "status",
        "analysis",
        "bus",
        "gas",
    ]


def test_token_ids_are_stable_uint32_across_processes() -> None:
    assert token_id("password") == int.from_bytes(
        __import__("hashlib").blake2b(b"password", digest_size=4).digest(), "big"
    )
    code = (
        "from ingest.encoding.sparse import token_id; print(token_id('password'), token_id('vpn'))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PYTHONPATH": str(repo)},
    ).stdout.split()
    assert [int(x) for x in out] == [token_id("password"), token_id("vpn")]
    assert all(0 <= token_id(t) < 2**32 for t in ("a", "é", "x" * 40))


def test_document_values_are_bm25_tf_saturation() -> None:
    vec = encode_document("vpn vpn vpn laptop")
    assert vec.indices == sorted(vec.indices)
    weights = dict(zip(vec.indices, vec.values, strict=True))
    norm = K1 * (1 - B + B * 4 / AVG_DOC_LEN)
    assert weights[token_id("vpn")] == pytest.approx(3 * (K1 + 1) / (3 + norm))
    assert weights[token_id("laptop")] == pytest.approx(1 * (K1 + 1) / (1 + norm))
    # saturation: many repeats approach k1 + 1, never beyond
    many = encode_document("vpn " * 500)
    assert many.values[0] < K1 + 1


def test_longer_documents_weigh_a_term_less() -> None:
    short = dict(zip(*_iv(encode_document("vpn setup guide")), strict=True))
    long = dict(zip(*_iv(encode_document("vpn setup guide " + "filler " * 300)), strict=True))
    assert long[token_id("vpn")] < short[token_id("vpn")]


def _iv(v: sparse.SparseVector) -> tuple[list[int], list[float]]:
    return v.indices, v.values


def test_query_values_are_one_per_unique_term() -> None:
    q = encode_query("VPN vpn laptop the")
    assert sorted(q.indices) == sorted([token_id("vpn"), token_id("laptop")])
    assert q.values == [1.0, 1.0]
    assert encode_query("") == sparse.SparseVector([], [])
    assert encode_document("   ") == sparse.SparseVector([], [])


def test_document_and_query_share_ids() -> None:
    doc = encode_document("Travel expenses must be filed")
    query = encode_query("filing travel expense")
    assert {token_id("travel"), token_id("expense")} <= set(doc.indices) & set(query.indices)
