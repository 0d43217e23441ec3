"""The LLM seam: one protocol, :class:`ChatModel`, and the class that implements it for both
backends, :class:`ChatLLM` (LangChain chat models underneath).

- ``llama_cpp`` (embedded default): :class:`~assistant.llama_local.LlamaCppChat` in-process on
  ``llm.model_path`` or the packaged small GGUF (assembled into ``<data_dir>/models``). Token
  counts are exact (the model's tokenizer on the rendered chat template).
- ``openai``: ``langchain_openai.ChatOpenAI`` against an OpenAI-compatible server (llama.cpp
  server, vLLM, Ollama, LM Studio). The server applies its chat template, so prompt tokens are
  an upper-bound estimate (:func:`estimate_tokens`); see docs/assistant.md.

:class:`ChatLLM` maps transport failures to :class:`LLMUnavailableError` /
:class:`LLMTimeoutError` so callers never see a hang or a raw HTTP error. :func:`load_llm` is
the explicit warm-up point: it returns a model that is loaded (in-process) or configured
(server). Every backend passes ``tests/assistant/contract.py::ChatModelContract``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from core.errors import LLMError, LLMTimeoutError, LLMUnavailableError
from core.settings import Settings
from policies.models import ensure_default_gguf


@dataclass
class StreamStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0


def estimate_tokens(messages: list[BaseMessage]) -> int:
    """Conservative token estimate for a server-side tokenizer: one token per 3 UTF-8 bytes
    (Llama 3's tokenizer averages ~4.5 bytes per token on English prose) plus the Llama 3
    template's per-message header and the generation prompt."""
    total = 8
    for m in messages:
        content = m.content if isinstance(m.content, str) else str(m.content)
        total += math.ceil(len(content.encode("utf-8")) / 3) + 8
    return total


@runtime_checkable
class ChatModel(Protocol):
    """What the assistant needs from a language model: its identity, its context window, a
    token count to budget the prompt with, and a streamed answer."""

    @property
    def model_id(self) -> str:
        """The model's name as the licence gate, usage records and the audit log know it."""

    @property
    def context_window(self) -> int:
        """Tokens the prompt and the answer share."""

    @property
    def exact_tokens(self) -> bool:
        """``True``: :meth:`count_tokens` is the model's own count; ``False``: an upper bound."""

    def warm_up(self) -> None:
        """Load what answering needs (an in-process model's weights). Idempotent."""

    def count_tokens(self, messages: list[BaseMessage]) -> int:
        """Prompt tokens of ``messages`` as the model will see them (see ``exact_tokens``)."""

    def stream(
        self,
        messages: list[BaseMessage],
        max_tokens: int,
        stats: StreamStats | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Text pieces as they are generated, ending before any ``stop`` string; at the end
        ``stats`` (when given) holds the token usage the model reported. Failures are
        :class:`~core.errors.LLMError` s, never a hang past ``llm.timeout_s``."""

    def invoke(self, messages: list[BaseMessage], max_tokens: int) -> str:
        """The whole answer at once."""


class ChatLLM:
    """:class:`ChatModel` over a LangChain chat model, with its identity, context window and
    token counter."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        model_id: str,
        context_window: int,
        count_tokens: Callable[[list[BaseMessage]], int],
        exact_tokens: bool,
        timeout_s: float,
        model_path: Path | None = None,
        warm_up: Callable[[], None] | None = None,
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.context_window = context_window
        self._count_tokens = count_tokens
        self.exact_tokens = exact_tokens
        self.timeout_s = timeout_s
        self.model_path = model_path
        self._warm_up = warm_up

    def warm_up(self) -> None:
        """Load the in-process model; a server backend has nothing to load here."""
        if self._warm_up is not None:
            self._warm_up()

    def count_tokens(self, messages: list[BaseMessage]) -> int:
        return self._count_tokens(messages)

    def stream(
        self,
        messages: list[BaseMessage],
        max_tokens: int,
        stats: StreamStats | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Text pieces as the model produces them (a LangChain ``Runnable.stream``)."""
        kwargs: dict[str, Any] = {"max_tokens": max_tokens}
        if stop:
            kwargs["stop"] = stop
        runnable = self.model.bind(**kwargs)
        try:
            for chunk in runnable.stream(messages):
                usage = getattr(chunk, "usage_metadata", None)
                if usage and stats is not None:
                    stats.prompt_tokens = int(usage.get("input_tokens", 0))
                    stats.completion_tokens = int(usage.get("output_tokens", 0))
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    yield text
        except LLMError:
            raise
        except Exception as exc:  # transport errors of the OpenAI client
            raise _map_error(exc, self.model_id) from exc

    def invoke(self, messages: list[BaseMessage], max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens))


def _map_error(exc: Exception, model_id: str) -> LLMError:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeoutError(f"the model server did not answer in time ({model_id}): {exc}")
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailableError(f"the model server is unreachable ({model_id}): {exc}")
    if isinstance(exc, openai.APIStatusError):
        return LLMUnavailableError(
            f"the model server refused the request ({model_id}): HTTP {exc.status_code}"
        )
    return LLMError(f"generation failed ({model_id}): {exc}")


def local_model_path(settings: Settings) -> Path:
    """``llm.model_path``, else the packaged small GGUF assembled into the models dir."""
    if settings.llm.model_path is not None:
        return settings.llm.model_path
    return ensure_default_gguf(settings.models_dir)


def _server_chat_class() -> type[BaseChatModel]:
    from langchain_openai import ChatOpenAI

    class LocalServerChat(ChatOpenAI):
        """ChatOpenAI that also sends the answer limit as ``max_tokens``: ChatOpenAI renames it
        to ``max_completion_tokens``, which llama-cpp-python's server ignores (it then
        generates until the context is full)."""

        def _get_request_payload(
            self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any
        ) -> dict[str, Any]:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            if "max_completion_tokens" in payload:
                payload["max_tokens"] = payload["max_completion_tokens"]
            return payload

    return LocalServerChat


_CACHE: dict[tuple[str, str, str], ChatLLM] = {}
_CACHE_LOCK = threading.Lock()


def load_llm(settings: Settings) -> ChatLLM:
    """The configured backend, warmed up once per process and configuration (an in-process
    model takes seconds and its size in memory to load)."""
    cfg = settings.llm
    # Every [llm] key shapes the model (its name goes into the licence check and the audit log),
    # so the whole section is the key (the JSON dump masks the API key: it is added); the
    # default GGUF's path depends on the data dir.
    path = local_model_path(settings).resolve() if cfg.backend == "llama_cpp" else None
    secret = cfg.api_key.get_secret_value() if cfg.api_key else ""
    key = (cfg.model_dump_json(), secret, str(path))
    with _CACHE_LOCK:
        llm = _CACHE.get(key)
        if llm is None:
            llm = _build(settings)
            llm.warm_up()
            _CACHE[key] = llm
        return llm


def _build(settings: Settings) -> ChatLLM:
    cfg = settings.llm
    if cfg.backend == "llama_cpp":
        from assistant.llama_local import LlamaCppChat

        path = local_model_path(settings)
        chat = LlamaCppChat(
            model_path=str(path),
            n_ctx=cfg.context_window,
            n_threads=cfg.n_threads,
            temperature=cfg.temperature,
            max_tokens=cfg.max_answer_tokens,
            chat_format=cfg.chat_format,
            timeout_s=cfg.timeout_s,
        )
        return ChatLLM(
            chat,
            model_id=cfg.model_name,
            context_window=cfg.context_window,
            count_tokens=chat.count_tokens,
            exact_tokens=True,
            timeout_s=cfg.timeout_s,
            model_path=path,
            warm_up=chat.warm_up,
        )
    if not cfg.base_url:
        raise LLMError("llm.backend = 'openai' needs llm.base_url", code="llm.config")
    from pydantic import SecretStr

    api_key = cfg.api_key or SecretStr("not-needed")
    server = _server_chat_class()(
        model=cfg.model_name,
        base_url=cfg.base_url,
        api_key=api_key,
        timeout=cfg.timeout_s,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_completion_tokens=cfg.max_answer_tokens,
        streaming=True,
        stream_usage=True,
    )
    return ChatLLM(
        server,
        model_id=cfg.model_name,
        context_window=cfg.context_window,
        count_tokens=estimate_tokens,
        exact_tokens=False,
        timeout_s=cfg.timeout_s,
        model_path=cfg.model_path,
    )
