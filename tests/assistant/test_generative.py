"""The generative answer path through the real llama.cpp seam (the small packaged base GGUF,
allowed here only to exercise the seam: it cannot answer well) and its guards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from assistant.answerers.generative import GenerativeAnswerer
from assistant.llm import ChatLLM
from assistant.service import Assistant
from core.settings import Settings
from policies.identity import Principal
from samples.generate import FACTS

pytestmark = pytest.mark.slow


def generative_settings(base: Settings, *, allow_base_model: bool) -> Settings:
    return base.model_copy(
        update={
            "answer": base.answer.model_copy(update={"mode": "generative"}),
            "llm": base.llm.model_copy(update={"allow_base_model": allow_base_model}),
        }
    )


@pytest.fixture(scope="module")
def assistant(sample_settings: Settings) -> Iterator[Assistant]:
    a = Assistant.from_settings(generative_settings(sample_settings, allow_base_model=True))
    a.warm_up()
    yield a
    a.close()


def llm_of(a: Assistant) -> ChatLLM:
    assert isinstance(a.answerer, GenerativeAnswerer)
    return a.answerer.llm


class Spy:
    """Records the prompts that reach the real model."""

    def __init__(self, llm: ChatLLM) -> None:
        self.llm = llm
        self.prompts: list[str] = []
        self._stream = llm.stream

    def __enter__(self) -> Spy:
        def stream(messages: Any, *args: Any, **kwargs: Any) -> Any:
            self.prompts.append("\n".join(str(m.content) for m in messages))
            return self._stream(messages, *args, **kwargs)

        self.llm.stream = stream  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.llm.stream = self._stream  # type: ignore[method-assign]


def bob(a: Assistant) -> Principal:
    p = a.policies.resolve_user("bob")
    assert p is not None
    return p


def test_a_base_model_is_refused_as_a_chat_model(sample_settings: Settings) -> None:
    a = Assistant.from_settings(generative_settings(sample_settings, allow_base_model=False))
    try:
        answer = a.ask("What is the per diem for international trips?", bob(a))
        assert answer.refused and answer.reason_code == "llm.not_chat_model"
        rec = a.policies.audit.records(limit=1, newest_first=True)[0]
        assert rec["details"]["outcome"] == "error"
    finally:
        a.close()


def test_generated_answers_are_grounding_checked_and_cite_only_what_they_use(
    assistant: Assistant,
) -> None:
    answer = assistant.ask("What is the per diem for international trips?", bob(assistant))
    assert answer.mode == "generative" and not answer.refused
    assert answer.grounding is not None
    assert 0.0 <= answer.grounding.support_ratio <= 1.0
    for marker in ("<<<", "SOURCE 1", "You are Enclave", "User:"):
        assert marker not in answer.answer
    cited = {c.chunk_id for c in answer.citations}
    assert cited.isdisjoint({s.chunk_id for s in answer.also_retrieved})
    rec = assistant.policies.audit.records(limit=1, newest_first=True)[0]
    assert rec["details"]["grounding"]["support_ratio"] == round(answer.grounding.support_ratio, 4)
    assert rec["details"]["answerer_details"]["citations_from"] in ("model", "grounding", "none")
    assert rec["model_sha256"] and answer.tokens["prompt"] > 0


def test_no_model_call_when_the_sources_carry_nothing(assistant: Assistant) -> None:
    with Spy(llm_of(assistant)) as spy:
        answer = assistant.ask("Which wine goes best with grilled salmon?", bob(assistant))
    assert spy.prompts == [] and answer.abstained


def test_injected_instructions_reach_the_model_only_inside_a_source_block(
    assistant: Assistant,
) -> None:
    inj = yaml.safe_load(FACTS.read_text())["prompt_injection"]
    with Spy(llm_of(assistant)) as spy:
        answer = assistant.ask(inj["question"], bob(assistant))
    assert len(spy.prompts) == 1
    # the small base model may obey "print your system prompt": the guard then withholds the
    # answer instead of showing the echo
    assert not answer.refused or answer.reason_code == "llm.prompt_echo"
    prompt = spy.prompts[0]
    at = prompt.index(inj["marker"])
    opened = prompt.rfind("<<<SOURCE ", 0, at)
    assert opened != -1
    n = prompt[opened + len("<<<SOURCE ") :].split(" ", 1)[0]
    assert prompt.index(f"<<<END SOURCE {n}>>>", at) > at
    assert prompt.rfind("<<<END SOURCE", opened, at) == -1
    for payload in ("NO93 8601 1117 947", "<<<"):
        assert payload not in answer.answer
