"""The ChatModel contract: what the assistant relies on from any LLM backend.

Each backend's test module subclasses :class:`ChatModelContract` as ``Test<Backend>`` and
provides one class-scoped fixture, ``chat_model``: a :class:`~assistant.llm.ChatModel` built by
the real factory (:func:`~assistant.llm.load_llm`) with ``context_window = CONTEXT`` and
``model_name = MODEL_NAME``. The tests run on the packaged Gemma 3 270M, a model too small to
follow instructions reliably, so they check what any model does: it streams, it stops, it
counts, it fails with an :class:`~core.errors.LLMError`.
"""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.llm import ChatModel, StreamStats
from core.errors import LLMError

CONTEXT = 2048
MODEL_NAME = "contract-model"
MSGS: list[BaseMessage] = [
    SystemMessage(content="Answer briefly."),
    HumanMessage(content="Name a colour."),
]
PROSE: list[BaseMessage] = [HumanMessage(content="Write three sentences about the sea.")]


class ChatModelContract:
    """Every :class:`~assistant.llm.ChatModel` implementation passes these tests."""

    # Whether the backend reports token usage at the end of a stream (``StreamStats``).
    reports_usage: ClassVar[bool] = True

    def test_speaks_the_protocol(self, chat_model: ChatModel) -> None:
        assert isinstance(chat_model, ChatModel)
        assert chat_model.model_id == MODEL_NAME
        assert chat_model.context_window == CONTEXT

    def test_streams_pieces_and_reports_usage(self, chat_model: ChatModel) -> None:
        stats = StreamStats()
        pieces = list(chat_model.stream(MSGS, 12, stats))
        assert len(pieces) >= 2  # streamed in pieces, not one blob
        assert "".join(pieces).strip()
        if not self.reports_usage:  # nothing reported: the assistant counts pieces instead
            assert stats == StreamStats()
            return
        assert 1 <= stats.completion_tokens <= 12
        counted = chat_model.count_tokens(MSGS)
        if chat_model.exact_tokens:
            assert stats.prompt_tokens == counted
        else:  # an estimate the prompt budget can rely on: never below the model's own count
            assert 0 < stats.prompt_tokens <= counted

    def test_stop_sequence_ends_the_answer(self, chat_model: ChatModel) -> None:
        free = "".join(chat_model.stream(PROSE, 24))
        assert "e" in free  # English prose: the stop string below does occur
        stopped = "".join(chat_model.stream(PROSE, 24, stop=["e"]))
        assert "e" not in stopped

    def test_count_tokens_grows_with_the_prompt(self, chat_model: ChatModel) -> None:
        short = chat_model.count_tokens(MSGS)
        longer = chat_model.count_tokens([*MSGS, HumanMessage(content="And another one? " * 20)])
        assert 0 < short < longer

    def test_invoke_returns_the_whole_answer(self, chat_model: ChatModel) -> None:
        text = chat_model.invoke(MSGS, 8)
        assert isinstance(text, str) and text.strip()

    def test_concurrent_requests_all_answer(self, chat_model: ChatModel) -> None:
        out: list[list[str]] = []
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                out.append(list(chat_model.stream(MSGS, 6)))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        assert len(out) == 3 and all(len(pieces) >= 1 for pieces in out)

    def test_prompt_beyond_the_context_is_an_llm_error(self, chat_model: ChatModel) -> None:
        too_long: list[BaseMessage] = [HumanMessage(content="word " * (CONTEXT + 200))]
        with pytest.raises(LLMError):
            list(chat_model.stream(too_long, 64))

    def test_warm_up_again_is_harmless(self, chat_model: ChatModel) -> None:
        chat_model.warm_up()
        assert "".join(chat_model.stream(MSGS, 4)).strip()
