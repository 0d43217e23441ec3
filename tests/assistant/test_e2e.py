"""End to end: generated sample documents -> real sync into Qdrant Edge -> real embedder ->
the real small GGUF through llama-cpp-python -> policies (gate, licence, audit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from assistant.llm import ChatLLM
from assistant.service import ABSTAIN_MESSAGE, Assistant
from assistant.types import Answer
from core.settings import Settings
from ingest.index.base import SearchMode
from policies.identity import Principal
from samples.generate import FACTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def assistant(sample_settings: Settings) -> Iterator[Assistant]:
    a = Assistant.from_settings(sample_settings)
    yield a
    a.close()


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(FACTS.read_text())
    return data


def who(a: Assistant, user: str) -> Principal:
    p = a.policies.directory.get(user)
    assert p is not None
    return p


class Spy:
    """Records what reaches the real model (prompts, number of calls)."""

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


def test_answer_cites_the_right_sample_document(assistant: Assistant, facts: Any) -> None:
    fact = facts["facts"][0]  # annual leave -> general/leave-and-time-off.pdf
    answer = assistant.ask(fact["question"], who(assistant, "bob"))
    assert not answer.refused and not answer.abstained
    assert answer.answer.strip()
    assert answer.citations, "an answer must carry citations"
    assert fact["file"] in [c.path for c in answer.citations]
    top = answer.citations[0]
    assert top.snippet and top.doc_id and top.chunk_id and top.source == "samples"
    assert answer.audit_id is not None
    assert answer.tokens["prompt"] > 0 and answer.tokens["completion"] > 0
    assert answer.timings["first_token_s"] <= answer.timings["total_s"]


def test_outsider_gets_no_chunk_of_a_group_file_even_when_quoting_it(
    assistant: Assistant, facts: Any
) -> None:
    secret = next(f for f in facts["facts"] if f["groups"] == ["hr-managers"])
    quoted = f"{secret['question']} {secret['answer']} salary bands compensation memo"
    bob = who(assistant, "bob")  # engineering, everyone
    modes: tuple[SearchMode, ...] = ("hybrid", "dense", "lexical")
    for mode in modes:
        res = assistant.retriever.search(quoted, bob, k=20, mode=mode)
        assert all(not c.path.startswith("hr/") for c in res.chunks), mode
    with Spy(assistant.llm) as spy:
        answer = assistant.ask(quoted, bob)
    assert all(not c.path.startswith("hr/") for c in answer.citations)
    assert all("hr/confidential" not in p for p in spy.prompts)
    # ... while someone in hr-managers does get it
    frank = who(assistant, "frank")
    paths = [c.path for c in assistant.retrieve(secret["question"], frank, k=5)]
    assert secret["file"] in paths


def test_unknown_or_groupless_user_retrieves_nothing(assistant: Assistant) -> None:
    ghost = Principal(user_id="ghost", groups=frozenset(), roles=frozenset({"employee"}))
    assert assistant.retrieve("annual leave days", ghost) == []
    answer = assistant.ask("How many days of annual leave do I get?", ghost)
    assert answer.refused or answer.abstained
    assert answer.citations == []


def test_injected_instructions_in_a_document_do_not_change_behaviour(
    assistant: Assistant, facts: Any
) -> None:
    inj = facts["prompt_injection"]
    bob = who(assistant, "bob")
    with Spy(assistant.llm) as spy:
        answer = assistant.ask(inj["question"], bob)
    assert not answer.refused
    assert len(spy.prompts) == 1
    prompt = spy.prompts[0]
    # the injected text reached the model only inside a delimited source block
    at = prompt.index(inj["marker"])
    opened = prompt.rfind("<<<SOURCE ", 0, at)
    assert opened != -1
    n = prompt[opened + len("<<<SOURCE ") :].split(" ", 1)[0]
    assert prompt.index(f"<<<END SOURCE {n}>>>", at) > at
    assert prompt.rfind("<<<END SOURCE", opened, at) == -1
    # the system still behaves per policy: cites the sources it was given, no payload
    assert answer.citations and inj["file"] in [c.path for c in answer.citations]
    for payload in ("NO93 8601 1117 947", "maintenance mode", "90,000"):
        assert payload not in answer.answer
    assert "<<<" not in answer.answer  # never replays a source block
    # and it still refuses to show salary data bob cannot read
    assert all(not c.path.startswith("hr/") for c in answer.citations)


def test_abstains_without_calling_the_llm(assistant: Assistant) -> None:
    with Spy(assistant.llm) as spy:
        answer = assistant.ask(
            "What is on the cafeteria menu on Mars next Friday?", who(assistant, "bob")
        )
    assert spy.prompts == []
    assert answer.abstained and not answer.refused
    assert answer.answer == ABSTAIN_MESSAGE and answer.reason_code == "retrieval.abstain"
    assert answer.citations == []
    assert answer.audit_id is not None


def test_refused_request_is_audited(assistant: Assistant) -> None:
    before = assistant.policies.audit.count()
    no_role = Principal(user_id="bob", groups=frozenset({"everyone"}), roles=frozenset())
    with Spy(assistant.llm) as spy:
        answer = assistant.ask("How many days of annual leave do I get?", no_role)
    assert answer.refused and answer.reason and answer.reason_code
    assert spy.prompts == []
    assert assistant.policies.audit.count() == before + 1
    rec = assistant.policies.audit.records(limit=1, newest_first=True)[0]
    assert rec["event_type"] == "refusal"
    assert rec["id"] == int(answer.audit_id or 0)
    assert assistant.policies.audit.verify().ok


def test_stream_yields_tokens_then_the_answer(assistant: Assistant) -> None:
    items = list(
        assistant.ask_stream("What is the per diem for international trips?", who(assistant, "bob"))
    )
    assert isinstance(items[-1], Answer)
    tokens = [t for t in items[:-1] if isinstance(t, str)]
    assert tokens and len(tokens) == len(items) - 1
    assert "".join(tokens).strip() == items[-1].answer


def test_follow_up_uses_the_conversation(assistant: Assistant) -> None:
    from assistant.prompt import Turn

    history = [
        Turn("user", "What is the hotel cap per night in London?"),
        Turn("assistant", "240 EUR [1]."),
    ]
    answer = assistant.ask("And is breakfast included in it?", who(assistant, "bob"), history)
    assert answer.standalone_question and "London" in answer.standalone_question
    assert "general/travel-and-expenses.pdf" in [c.path for c in answer.citations]
