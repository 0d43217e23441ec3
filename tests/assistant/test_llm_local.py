"""The embedded backend: the real Gemma 3 270M GGUF through llama-cpp-python in-process (the
ChatModel contract, and what only an in-process model does)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.gguf import read_metadata
from assistant.llama_local import LlamaCppChat
from assistant.llm import ChatLLM, ChatModel, load_llm
from core.errors import LLMError, LLMTimeoutError, ModelFileError
from core.settings import load_settings
from tests.assistant.contract import CONTEXT, MODEL_NAME, ChatModelContract

MSGS = [SystemMessage(content="Answer briefly."), HumanMessage(content="Name a colour.")]


class TestLlamaCppInProcess(ChatModelContract):
    @pytest.fixture(scope="class")
    def chat_model(self, tmp_path_factory: pytest.TempPathFactory, gguf_path: Path) -> ChatModel:
        settings = load_settings(
            data_dir=tmp_path_factory.mktemp("llm"),
            llm={
                "backend": "llama_cpp",
                "model_path": str(gguf_path),
                "model_name": MODEL_NAME,
                "context_window": CONTEXT,
            },
        )
        return load_llm(settings)

    def test_token_counts_are_exact(self, chat_model: ChatModel) -> None:
        assert chat_model.exact_tokens is True


def _wrap(chat: LlamaCppChat) -> ChatLLM:
    return ChatLLM(
        chat,
        model_id="gemma-3-270m-q4_k_m",
        context_window=chat.n_ctx,
        count_tokens=chat.count_tokens,
        exact_tokens=True,
        timeout_s=chat.timeout_s,
    )


def test_gguf_header_is_read_without_loading(gguf_path: Path) -> None:
    info = read_metadata(gguf_path)
    assert info.architecture == "gemma3"
    assert info.context_length == 32768
    assert info.name and "270m" in info.name.lower()
    assert info.size_bytes == gguf_path.stat().st_size


def test_not_a_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        read_metadata(bad)
    trunc = tmp_path / "t.gguf"
    trunc.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(ModelFileError, match="truncated"):
        read_metadata(trunc)


def test_system_rules_reach_the_prompt(small_chat: LlamaCppChat) -> None:
    tokens, stops = small_chat.render(MSGS)
    text = small_chat.llama.detokenize(tokens, special=True).decode()
    assert "Answer briefly." in text and "Name a colour." in text
    assert text.rstrip().endswith("<start_of_turn>model")
    assert "<end_of_turn>" in stops


def test_langchain_invoke_returns_a_message(small_chat: LlamaCppChat) -> None:
    msg = small_chat.invoke(MSGS, max_tokens=5)
    assert isinstance(msg.content, str) and msg.content


def test_concurrent_requests_are_serialized_and_all_answer(small_chat: LlamaCppChat) -> None:
    llama = small_chat.llama
    real = llama.create_completion
    active = {"now": 0, "max": 0}
    guard = threading.Lock()

    def counting(*args: Any, **kwargs: Any) -> Any:
        with guard:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        try:
            yield from real(*args, **kwargs)
        finally:
            with guard:
                active["now"] -= 1

    llama.create_completion = counting
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            msgs: list[BaseMessage] = [HumanMessage(content=f"Count to {i}.")]
            results.append("".join(_wrap(small_chat).stream(msgs, 8)))
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        llama.create_completion = real
    assert not errors
    assert len(results) == 4 and all(r.strip() for r in results)
    assert active["max"] == 1  # the model never ran two generations at once


def test_generation_past_the_timeout_stops(small_chat: LlamaCppChat) -> None:
    slow = small_chat.model_copy(update={"timeout_s": 0.0001})
    slow._llama, slow._format, slow._lock = small_chat._llama, small_chat._format, small_chat._lock
    t0 = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        list(_wrap(slow).stream(MSGS, 200))
    assert time.monotonic() - t0 < 10
    # the lock was released: the model still answers
    assert "".join(_wrap(small_chat).stream(MSGS, 4))


def test_prompt_plus_answer_over_the_context_is_refused(small_chat: LlamaCppChat) -> None:
    with pytest.raises(LLMError, match="exceed the context"):
        list(_wrap(small_chat).stream([HumanMessage(content="word " * 1900)], 512))


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    chat = LlamaCppChat(model_path=str(tmp_path / "nope.gguf"))  # creating loads nothing
    with pytest.raises(LLMError, match="model file not found"):
        chat.warm_up()


def test_creating_loads_nothing_until_warm_up(gguf_path: Path) -> None:
    """Heavy loading is explicit: neither creating the model nor reading a property loads it."""
    chat = LlamaCppChat(model_path=str(gguf_path), n_ctx=512)
    assert chat.llama is None
    with pytest.raises(LLMError, match=r"warm_up\(\)"):
        chat.count_tokens(MSGS)
    chat.warm_up()
    assert chat.llama is not None and chat.count_tokens(MSGS) > 0


def test_each_configuration_gets_its_own_model(tmp_path: Path, gguf_path: Path) -> None:
    """Two configurations of one GGUF that differ in the model's name are two models: the
    licence gate and the audit log must see the configured name."""
    llm = {"model_path": str(gguf_path), "context_window": 512}
    a = load_llm(load_settings(data_dir=tmp_path, llm={**llm, "model_name": "first-name"}))
    b = load_llm(load_settings(data_dir=tmp_path, llm={**llm, "model_name": "second-name"}))
    assert (a.model_id, b.model_id) == ("first-name", "second-name")
    assert load_llm(load_settings(data_dir=tmp_path, llm={**llm, "model_name": "first-name"})) is a
