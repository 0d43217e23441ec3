"""In-process llama-cpp-python as a LangChain chat model (embedded default backend).

The prompt is rendered with the model's chat template and tokenized here, and generation runs
on exactly those tokens, so :meth:`LlamaCppChat.count_tokens` is the model's own count of the
prompt it will see. Creating a :class:`LlamaCppChat` loads nothing; :meth:`LlamaCppChat.warm_up`
loads the GGUF. A ``llama_cpp.Llama`` is not re-entrant: one lock serializes every
tokenize/generate call; concurrent requests queue. A generation that exceeds ``timeout_s``
stops and raises :class:`LLMTimeoutError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from core.errors import LLMError, LLMTimeoutError

Formatter = Callable[[list[dict[str, str]]], tuple[str, list[str], bool]]


def to_role_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    out = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else str(m.content)
        out.append({"role": roles.get(m.type, "user"), "content": content})
    return out


def _gemma(messages: list[dict[str, str]]) -> tuple[str, list[str], bool]:
    """Gemma turns; like Gemma 3's own template, the system text opens the first user turn
    (llama-cpp's built-in "gemma" format drops system messages, which would lose the rules)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    parts = ["<bos>"]
    first = True
    for m in messages:
        if m["role"] == "system":
            continue
        role = "model" if m["role"] == "assistant" else "user"
        text = m["content"]
        if first and system and role == "user":
            text = f"{system}\n\n{text}"
        first = False
        parts.append(f"<start_of_turn>{role}\n{text}<end_of_turn>\n")
    parts.append("<start_of_turn>model\n")
    return "".join(parts), ["<end_of_turn>"], True


def make_formatter(llama: Any, chat_format: str | None, architecture: str | None) -> Formatter:
    """The GGUF's embedded chat template, else a named format (``gemma``, ``llama-3``, ...)."""
    from llama_cpp import llama_chat_format as lcf

    template = llama.metadata.get("tokenizer.chat_template")
    if chat_format is None and template:
        eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", "replace")
        bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", "replace")
        jinja = lcf.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

        def embedded(messages: list[dict[str, str]]) -> tuple[str, list[str], bool]:
            r = jinja(messages=messages)  # type: ignore[arg-type]
            return r.prompt, [eos], r.added_special

        return embedded
    name = chat_format or ("gemma" if (architecture or "").startswith("gemma") else "chatml")
    if name == "gemma":
        return _gemma
    formatters = {"llama-3": lcf.format_llama3, "chatml": lcf.format_chatml}
    if name not in formatters:
        raise LLMError(
            f"llm.chat_format {name!r} is not supported here; use llama-3, chatml or gemma",
            code="llm.chat_format",
        )
    fmt = formatters[name]

    def named(messages: list[dict[str, str]]) -> tuple[str, list[str], bool]:
        r = fmt(messages)
        stop = [r.stop] if isinstance(r.stop, str) else list(r.stop or [])
        return r.prompt, stop, r.added_special

    return named


class LlamaCppChat(BaseChatModel):
    """Chat model over one ``llama_cpp.Llama``; thread-safe by serialization."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    n_ctx: int = 8192
    n_threads: int | None = None
    temperature: float = 0.1
    max_tokens: int = 512
    chat_format: str | None = None
    timeout_s: float = 120.0
    seed: int = 7

    _llama: Any = PrivateAttr(default=None)
    _format: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def warm_up(self) -> None:
        """Load the GGUF into memory (seconds, and the model's size in RAM). Idempotent."""
        with self._lock:
            if self._llama is not None:
                return
            from llama_cpp import Llama

            path = Path(self.model_path)
            if not path.is_file():
                raise LLMError(f"model file not found: {path}", code="llm.model_file")
            try:
                llama = Llama(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    seed=self.seed,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"llama.cpp could not load {path}: {exc}", code="llm.load") from exc
            arch = llama.metadata.get("general.architecture")
            self._format = make_formatter(llama, self.chat_format, arch)
            self._llama = llama

    def _loaded(self) -> Any:
        if self._llama is None:
            raise LLMError(f"{self.model_path} is not loaded: call warm_up() first")
        return self._llama

    @property
    def _llm_type(self) -> str:
        return "enclave-llama-cpp"

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (benchmarks compare against it directly); ``None``
        before :meth:`warm_up`."""
        return self._llama

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def render(self, messages: list[BaseMessage]) -> tuple[list[int], list[str]]:
        """Prompt tokens exactly as generation will feed them, and the stop strings."""
        llama = self._loaded()
        prompt, stop, added_special = self._format(to_role_dicts(messages))
        with self._lock:
            tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=not added_special, special=True)
        return list(tokens), stop

    def count_tokens(self, messages: list[BaseMessage]) -> int:
        return len(self.render(messages)[0])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tokens, stops = self.render(messages)
        max_tokens = int(kwargs.get("max_tokens") or self.max_tokens)
        if len(tokens) + max_tokens > self.n_ctx:
            raise LLMError(
                f"prompt ({len(tokens)} tokens) + answer ({max_tokens}) exceed the context "
                f"window ({self.n_ctx})",
                code="llm.context_overflow",
            )
        deadline = time.monotonic() + float(kwargs.get("timeout_s") or self.timeout_s)
        n_out = 0
        with self._lock:
            stream = self._loaded().create_completion(
                prompt=tokens,
                max_tokens=max_tokens,
                temperature=self.temperature,
                stop=stops + list(stop or []),
                stream=True,
                seed=self.seed,
            )
            try:
                for part in stream:
                    choice = part["choices"][0]
                    text = choice["text"]
                    if choice.get("finish_reason") is None:
                        n_out += 1  # one streamed part per generated token
                    if text:
                        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                        if run_manager:
                            run_manager.on_llm_new_token(text, chunk=chunk)
                        yield chunk
                    if time.monotonic() > deadline:
                        raise LLMTimeoutError(
                            f"generation exceeded {self.timeout_s:.0f} s and was stopped"
                        )
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        usage = UsageMetadata(
            input_tokens=len(tokens), output_tokens=n_out, total_tokens=len(tokens) + n_out
        )
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: AIMessageChunk | None = None
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            msg = chunk.message
            assert isinstance(msg, AIMessageChunk)
            merged = msg if merged is None else merged + msg
        assert merged is not None
        return ChatResult(generations=[ChatGeneration(message=merged)])
