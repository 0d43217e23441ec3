"""The LLM seam: one interface, two backends (LangChain runnables underneath).

- ``llama_cpp`` (embedded default): :class:`~assistant.llama_local.LlamaCppChat` in-process on
  ``llm.model_path`` or the packaged small GGUF (assembled into ``<data_dir>/models``). Token
  counts are exact (the model's tokenizer on the rendered chat template).
- ``openai``: ``langchain_openai.ChatOpenAI`` against an OpenAI-compatible server (llama.cpp
  server, vLLM, Ollama, LM Studio). The server applies its chat template, so prompt tokens are
  an upper-bound estimate (:func:`estimate_tokens`); see docs/assistant.md.

Both are used through :class:`ChatLLM`, which maps transport failures to
:class:`LLMUnavailableError` / :class:`LLMTimeoutError` so callers never see a hang or a raw
HTTP error.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class ChatLLM:
    """A chat model with its identity, context window and tokenizer."""

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
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.context_window = context_window
        self.count_tokens = count_tokens
        self.exact_tokens = exact_tokens
        self.timeout_s = timeout_s
        self.model_path = model_path

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


_CACHE: dict[tuple[object, ...], ChatLLM] = {}
_CACHE_LOCK = threading.Lock()


def load_llm(settings: Settings) -> ChatLLM:
    """The configured backend, loaded once per process and configuration."""
    cfg = settings.llm
    if cfg.backend == "llama_cpp":
        path = local_model_path(settings).resolve()
        key: tuple[object, ...] = ("llama_cpp", str(path), cfg.context_window, cfg.chat_format)
    else:
        key = ("openai", cfg.base_url, cfg.model_name)
    with _CACHE_LOCK:
        llm = _CACHE.get(key)
        if llm is None:
            llm = _build(settings)
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
