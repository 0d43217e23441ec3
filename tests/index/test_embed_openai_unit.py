"""The OpenAI-compatible embedding client against scripted HTTP answers (httpx's mock
transport, no socket): what real servers do differently or wrongly. The real server is tested
in test_embed_openai.py."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from core.errors import EmbeddingNotServedError, EmbeddingServiceError
from ingest.encoding import openai as openai_mod
from ingest.encoding.openai import OpenAIEmbedder

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(openai_mod.time, "sleep", slept.append)
    return slept


def _vec(text: str, dim: int = 4, scale: float = 3.0) -> list[float]:
    """A deterministic, un-normalised vector (as llama.cpp's Python server returns)."""
    seed = sum(map(ord, text)) + 1
    return [scale * ((seed * (i + 3)) % 7 + 1) for i in range(dim)]


def _server(
    *,
    models: list[str] | None = None,
    models_status: int = 200,
    embed: Callable[[dict[str, Any]], httpx.Response] | None = None,
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            if models_status != 200:
                return httpx.Response(models_status)
            return httpx.Response(200, json={"data": [{"id": m} for m in models or ["m"]]})
        body = json.loads(request.content)
        if embed is not None:
            return embed(body)
        data = [
            {"index": i, "embedding": _vec(t)} for i, t in reversed(list(enumerate(body["input"])))
        ]
        return httpx.Response(200, json={"data": data, "model": body["model"]})

    return handler


def _client(handler: Handler, **kwargs: Any) -> OpenAIEmbedder:
    options: dict[str, Any] = {"base_url": "http://embed.test/v1", "model": "m"}
    options.update(kwargs)
    emb = OpenAIEmbedder(transport=httpx.MockTransport(handler), **options)
    emb.warm_up()  # checks the served model and probes the dimension
    return emb


def test_unnormalised_answers_in_any_order_become_unit_vectors_in_input_order() -> None:
    emb = _client(_server(), batch_size=2, concurrent_requests=3)
    texts = [f"text {i}" for i in range(7)]
    got = emb.embed_documents(texts)
    assert emb.dim == 4 and len(got) == 7
    for text, v in zip(texts, got, strict=True):
        raw = _vec(text)
        norm = math.sqrt(sum(x * x for x in raw))
        assert v == pytest.approx([x / norm for x in raw])


def test_base64_float32_answers_are_decoded() -> None:
    def embed(body: dict[str, Any]) -> httpx.Response:
        rows = []
        for i, t in enumerate(body["input"]):
            raw = struct.pack("<4f", *_vec(t))
            rows.append({"index": i, "embedding": base64.b64encode(raw).decode()})
        return httpx.Response(200, json={"data": rows})

    v = _client(_server(embed=embed)).embed_query("hello")
    raw = _vec("hello")
    norm = math.sqrt(sum(x * x for x in raw))
    assert v == pytest.approx([x / norm for x in raw], rel=1e-6)


def test_transient_errors_are_retried_with_backoff(no_sleep: list[float]) -> None:
    answers = iter([503, 429, 200, 502, 200])

    def embed(body: dict[str, Any]) -> httpx.Response:
        status = next(answers)
        if status != 200:
            return httpx.Response(status, headers={"retry-after": "2"} if status == 429 else {})
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 0.0]}]})

    emb = _client(_server(embed=embed), max_retries=3)
    assert emb.embed_query("x") == [1.0, 0.0]
    assert no_sleep == [0.5, 2.0, 0.5]  # exponential, at least Retry-After


def test_retries_used_up_or_a_client_error_fail_with_the_servers_words() -> None:
    with pytest.raises(EmbeddingServiceError, match=r"HTTP 503: overloaded"):
        _client(_server(embed=lambda b: httpx.Response(503, text="overloaded")), max_retries=2)
    bad = _server(embed=lambda b: httpx.Response(400, text="input too long"))
    calls: list[str] = []

    def counting(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return bad(request)

    with pytest.raises(EmbeddingServiceError, match=r"HTTP 400: input too long"):
        _client(counting, max_retries=3)
    assert calls == ["/v1/models", "/v1/embeddings"]  # a 400 is not retried


def _after_probe(answer: Callable[[dict[str, Any]], httpx.Response]) -> Handler:
    """A server that answers the start-up probe correctly and then ``answer`` s."""
    probed: list[bool] = []

    def embed(body: dict[str, Any]) -> httpx.Response:
        if not probed:
            probed.append(True)
            return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 2.0]}]})
        return answer(body)

    return _server(embed=embed)


def test_wrong_count_or_dimension_is_an_error_never_a_silent_mix() -> None:
    def one_short(body: dict[str, Any]) -> httpx.Response:
        rows = [{"index": i, "embedding": [1.0, 2.0]} for i in range(len(body["input"]) - 1)]
        return httpx.Response(200, json={"data": rows})

    with pytest.raises(EmbeddingServiceError, match="returned 1 vectors for 2 texts"):
        _client(_after_probe(one_short)).embed_documents(["a", "b"])

    def wider(body: dict[str, Any]) -> httpx.Response:
        rows = [{"index": i, "embedding": [1.0] * 8} for i in range(len(body["input"]))]
        return httpx.Response(200, json={"data": rows})

    with pytest.raises(EmbeddingServiceError, match="dimension 8 where 2 was expected"):
        _client(_after_probe(wider)).embed_documents(["a"])


def test_model_check_at_start() -> None:
    with pytest.raises(EmbeddingNotServedError, match=r"serves bge-m3, not .* 'm'"):
        _client(_server(models=["bge-m3"]))
    assert _client(_server(models_status=404)).dim == 4  # no /models route: accepted
    assert _client(_server(models=["m", "other"]), model="m").model_id == "m"
    assert _client(_server(models=["all-MiniLM-L6-v2"]), model="default").model_id == (
        "all-MiniLM-L6-v2"
    )
