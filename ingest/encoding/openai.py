"""Embeddings from an OpenAI-compatible ``/v1/embeddings`` server (``backend = "openai"``).

The embedding model then runs as a service (Text Embeddings Inference, vLLM, Infinity, Ollama,
llama.cpp's server), typically on GPUs that many ingest workers and UI replicas share. The
client is the same surface as the in-process embedder (``model_id``, ``dim``,
``embed_documents``, ``embed_query``), so the sync, the workers and the assistant do not know
which one they hold.

What it guarantees, because a service can change under a running index:

- **At start** it checks that the server serves ``embedding.model`` (``GET /models``, where the
  server has that route) and learns the dimension from a probe request. The sync then compares
  model and dimension with what built the collection: a mismatch is a clear error
  (:class:`~core.errors.EmbeddingChangedError`), never a mixed index.
- **Every answer** is checked: one vector per input, in input order (by ``index``), all of the
  probed dimension and finite. Vectors are L2-normalised here: some servers (llama.cpp's Python
  server) return raw mean-pooled vectors, and the index compares by cosine of unit vectors.
- **Transient failures** (connection refused or reset, timeouts, HTTP 429 and 5xx) are retried
  ``max_retries`` times with exponential backoff (honouring ``Retry-After``); any other HTTP
  error, or retries used up, is :class:`~core.errors.EmbeddingServiceError` naming the server.

Texts are sent ``batch_size`` at a time, up to ``concurrent_requests`` requests at once (GPU
servers batch concurrent requests together). Inputs longer than the model's context are the
server's to truncate (TEI ``--auto-truncate``; Infinity and sentence-transformers-based servers
truncate by themselves).
"""

from __future__ import annotations

import base64
import contextlib
import math
import struct
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from core.errors import EmbeddingNotServedError, EmbeddingServiceError

if TYPE_CHECKING:
    from core.settings import EmbeddingSettings

DEFAULT_SERVED_NAME = "all-MiniLM-L6-v2"
_PROBE = "dimension probe"
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF_S = 8.0


def served_name(model: str) -> str:
    """The model name to ask the server for: ``default`` is the packaged MiniLM's name."""
    return DEFAULT_SERVED_NAME if model == "default" else model


class OpenAIEmbedder:
    """Normalized embeddings from an OpenAI-compatible server. Thread-safe."""

    backend = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 32,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        concurrent_requests: int = 1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_id = served_name(model)
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.concurrent_requests = concurrent_requests
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
        )
        self._dim = 0
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if not self._dim:
            raise EmbeddingServiceError(
                f"embedder {self.model_id} at {self.base_url} is not checked yet: call warm_up()"
            )
        return self._dim

    def warm_up(self) -> None:
        """Check that the server serves the model, and learn the dimension from one probe."""
        with self._lock:
            if self._dim:
                return
            self.check_served()
            probe = self._request([_PROBE], expect_dim=None)
            if not probe[0]:
                raise EmbeddingServiceError(
                    f"the embedding server at {self.base_url} returned an empty vector for "
                    f"model {self.model_id!r}"
                )
            self._dim = len(probe[0])

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings) -> OpenAIEmbedder:
        assert settings.base_url is not None  # the settings validator requires it
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(
            base_url=settings.base_url,
            model=settings.model,
            api_key=key,
            batch_size=settings.batch_size,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            concurrent_requests=settings.concurrent_requests,
        )

    # -- the embedder surface ------------------------------------------------------------------
    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        batches = [
            list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)
        ]
        if self.concurrent_requests == 1 or len(batches) == 1:
            results = [self._request(b, expect_dim=self.dim) for b in batches]
        else:
            workers = min(self.concurrent_requests, len(batches))
            with ThreadPoolExecutor(workers, thread_name_prefix="embed-request") as pool:
                results = list(pool.map(lambda b: self._request(b, expect_dim=self.dim), batches))
        return [vec for batch in results for vec in batch]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        self._client.close()

    # -- start-up check ------------------------------------------------------------------------
    def check_served(self) -> None:
        """Refuse a server that lists its models and does not list ours. Servers without the
        route (404/405) are accepted: the probe request then names the model."""
        response = self._send("GET", "/models", None)
        if response.status_code in (404, 405):
            return
        self._raise_for_status(response, "GET /models")
        try:
            ids = [str(m["id"]) for m in response.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbeddingServiceError(
                f"the embedding server at {self.base_url} answered GET /models with something "
                f"that is not an OpenAI model list: {exc}"
            ) from exc
        if ids and self.model_id not in ids:
            raise EmbeddingNotServedError(
                f"the embedding server at {self.base_url} serves {', '.join(sorted(ids))}, not "
                f"the configured embedding.model {self.model_id!r}; serve that model (e.g. "
                "--served-model-name) or set embedding.model to the model the index was built "
                "with"
            )

    # -- HTTP ----------------------------------------------------------------------------------
    def _request(self, texts: list[str], *, expect_dim: int | None) -> list[list[float]]:
        body = {"model": self.model_id, "input": texts, "encoding_format": "float"}
        response = self._send("POST", "/embeddings", body)
        self._raise_for_status(response, "POST /embeddings")
        try:
            data = response.json()["data"]
            rows = sorted(data, key=lambda row: int(row.get("index", 0)))
            vectors = [_decode(row["embedding"]) for row in rows]
        except (ValueError, KeyError, TypeError, AttributeError, struct.error) as exc:
            raise EmbeddingServiceError(
                f"the embedding server at {self.base_url} answered with something that is not "
                f"an OpenAI embeddings response: {exc}"
            ) from exc
        if len(vectors) != len(texts):
            raise EmbeddingServiceError(
                f"the embedding server at {self.base_url} returned {len(vectors)} vectors for "
                f"{len(texts)} texts"
            )
        dim = expect_dim if expect_dim is not None else len(vectors[0])
        for vec in vectors:
            if len(vec) != dim:
                raise EmbeddingServiceError(
                    f"the embedding server at {self.base_url} returned a vector of dimension "
                    f"{len(vec)} where {dim} was expected (did the served model change?)"
                )
        return [_normalized(v, self.base_url) for v in vectors]

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._client.request(method, path, json=body)
            except httpx.TransportError as exc:  # refused, reset, DNS, timeouts
                if last:
                    raise EmbeddingServiceError(
                        f"the embedding server at {self.base_url} cannot be reached "
                        f"({type(exc).__name__}: {exc}) after {attempt + 1} attempts"
                    ) from exc
                time.sleep(_backoff(attempt, None))
                continue
            if response.status_code not in _RETRY_STATUS or last:
                return response
            time.sleep(_backoff(attempt, response))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        if response.is_success:
            return
        detail = response.text.strip().replace("\n", " ")[:300]
        raise EmbeddingServiceError(
            f"the embedding server at {self.base_url} answered {what} with HTTP "
            f"{response.status_code}: {detail or response.reason_phrase}"
        )


def _backoff(attempt: int, response: httpx.Response | None) -> float:
    wait = min(_MAX_BACKOFF_S, 0.5 * 2**attempt)
    if response is not None:
        with contextlib.suppress(ValueError):
            wait = min(_MAX_BACKOFF_S, max(wait, float(response.headers.get("retry-after", 0))))
    return wait


def _decode(value: Any) -> list[float]:
    """A float list, or base64 little-endian float32 (servers may send either)."""
    if isinstance(value, str):
        raw = base64.b64decode(value)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return [float(x) for x in value]


def _normalized(vec: list[float], where: str) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    if not math.isfinite(norm) or norm == 0.0:
        raise EmbeddingServiceError(
            f"the embedding server at {where} returned a vector that cannot be normalised "
            f"(norm {norm})"
        )
    return [x / norm for x in vec]
