"""End to end: generated sample documents -> real sync into Qdrant Edge -> real embedder ->
the extractive default answerer (and, in test_generative.py, the real small GGUF through
llama-cpp-python) -> policies (gate, licence, audit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from assistant.answerers.base import ABSTAIN_MESSAGE
from assistant.service import Assistant
from assistant.types import Answer
from core.errors import IndexUnavailableError
from core.settings import Settings
from ingest.index.base import SearchMode
from policies.identity import Principal
from samples.generate import FACTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def assistant(sample_settings: Settings) -> Iterator[Assistant]:
    a = Assistant.from_settings(sample_settings)
    a.warm_up()
    yield a
    a.close()


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(FACTS.read_text())
    return data


def who(a: Assistant, user: str) -> Principal:
    p = a.policies.resolve_user(user)
    assert p is not None
    return p


def last_record(a: Assistant) -> dict[str, Any]:
    return a.policies.audit.records(limit=1, newest_first=True)[0]


def test_every_sample_fact_is_answered_with_a_quote_from_its_file(
    assistant: Assistant, facts: Any
) -> None:
    frank = who(assistant, "frank")  # general, IT, HR, HR confidential, finance
    bob = who(assistant, "bob")  # general, IT, engineering
    missed = []
    for fact in facts["facts"]:
        user = bob if fact["groups"] == ["engineering"] else frank
        if not set(fact["groups"]) & user.groups:
            continue
        answer = assistant.ask(fact["question"], user)
        assert answer.mode == "extractive" and not answer.refused
        cited = [c.path for c in answer.citations]
        if answer.abstained or fact["answer"].lower() not in answer.answer.lower():
            missed.append((fact["question"], answer.answer[:160]))
            continue
        assert fact["file"] in cited, (fact["question"], cited)
        for c in answer.citations:
            assert c.highlights and all(c.text[a:b] in c.text for a, b in c.highlights)
            # every quoted passage is verbatim in the cited chunk
            for a, b in c.highlights:
                assert " ".join(c.text[a:b].split()) in answer.answer
        assert answer.audit_id is not None
    assert len(missed) <= 2, missed


def test_answers_list_only_the_sources_they_quote(assistant: Assistant) -> None:
    answer = assistant.ask("What is the per diem for international trips?", who(assistant, "bob"))
    assert answer.citations and answer.also_retrieved
    cited = {c.chunk_id for c in answer.citations}
    assert cited.isdisjoint({s.chunk_id for s in answer.also_retrieved})
    rec = last_record(assistant)
    assert rec["details"]["cited"] == [c.chunk_id for c in answer.citations]
    assert rec["details"]["answerer"] == "extractive"
    assert rec["model_name"].startswith("extractive/")


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
    answer = assistant.ask(quoted, bob)
    assert all(not c.path.startswith("hr/") for c in answer.citations)
    assert all(not s.path.startswith("hr/") for s in answer.also_retrieved)
    assert secret["answer"] not in answer.answer
    frank = who(assistant, "frank")
    paths = [c.path for c in assistant.search(secret["question"], frank, k=5).chunks]
    assert secret["file"] in paths


def test_groupless_user_retrieves_nothing(assistant: Assistant) -> None:
    ghost = Principal(user_id="ghost", groups=frozenset(), roles=frozenset({"employee"}))
    assert assistant.search("annual leave days", ghost).chunks == []
    answer = assistant.ask("How many days of annual leave do I get?", ghost)
    assert answer.abstained and answer.citations == [] and answer.also_retrieved == []


def test_a_planted_instruction_is_never_quoted(assistant: Assistant, facts: Any) -> None:
    inj = facts["prompt_injection"]
    answer = assistant.ask(inj["question"], who(assistant, "bob"))
    assert not answer.refused
    for payload in ("NO93 8601 1117 947", "maintenance mode", "IGNORE ALL PREVIOUS"):
        assert payload not in answer.answer
    assert all(not c.path.startswith("hr/") for c in answer.citations)


def test_abstains_when_no_passage_carries_the_question(assistant: Assistant) -> None:
    answer = assistant.ask("Which wine goes best with grilled salmon?", who(assistant, "bob"))
    assert answer.abstained and not answer.refused
    assert answer.answer == ABSTAIN_MESSAGE and answer.reason_code == "answer.no_support"
    assert answer.citations == []
    assert last_record(assistant)["details"]["outcome"] == "abstained"


def test_refused_request_is_audited(assistant: Assistant) -> None:
    before = assistant.policies.audit.count()
    no_role = Principal(user_id="bob", groups=frozenset({"everyone"}), roles=frozenset())
    answer = assistant.ask("How many days of annual leave do I get?", no_role)
    assert answer.refused and answer.reason and answer.reason_code
    assert assistant.policies.audit.count() == before + 1
    rec = last_record(assistant)
    assert rec["event_type"] == "refusal" and rec["id"] == int(answer.audit_id or 0)
    assert rec["retrieved"] == []  # refused before retrieval
    assert assistant.policies.audit.verify().ok


def test_stream_yields_text_then_the_answer(assistant: Assistant) -> None:
    items = list(
        assistant.ask_stream("What is the per diem for international trips?", who(assistant, "bob"))
    )
    assert isinstance(items[-1], Answer)
    pieces = [t for t in items[:-1] if isinstance(t, str)]
    assert pieces and len(pieces) == len(items) - 1
    assert "".join(pieces).strip() == items[-1].answer


def test_a_stopped_answer_is_audited_as_stopped(assistant: Assistant) -> None:
    before = assistant.policies.audit.count()
    stream = assistant.ask_stream(
        "What is the per diem for international trips?", who(assistant, "bob")
    )
    first = next(stream)
    assert isinstance(first, str) and first
    stream.close()  # the user pressed Stop
    assert assistant.policies.audit.count() == before + 1
    rec = last_record(assistant)
    assert rec["details"]["outcome"] == "stopped" and rec["answer"] == first


def test_an_error_after_the_gate_is_audited(
    assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_a: Any, **_k: Any) -> Any:
        raise IndexUnavailableError("the Qdrant server cannot be reached")

    monkeypatch.setattr(assistant.retriever, "search", down)
    before = assistant.policies.audit.count()
    answer = assistant.ask("What is the per diem?", who(assistant, "bob"))
    assert answer.refused and answer.reason_code == "index.unreachable"
    assert assistant.policies.audit.count() == before + 1
    rec = last_record(assistant)
    assert rec["details"]["outcome"] == "error" and rec["event_type"] == "refusal"


def test_follow_up_uses_the_conversation(assistant: Assistant) -> None:
    from assistant.prompt import Turn

    history = [
        Turn("user", "What is the hotel cap per night in London?"),
        Turn("assistant", "240 EUR [1]."),
    ]
    answer = assistant.ask("And is breakfast included in it?", who(assistant, "bob"), history)
    assert answer.standalone_question and "London" in answer.standalone_question
    cited_or_seen = [c.path for c in answer.citations] + [s.path for s in answer.also_retrieved]
    assert "general/travel-and-expenses.pdf" in cited_or_seen


def test_personal_data_in_a_follow_up_is_masked_in_the_audit_record(
    assistant: Assistant,
) -> None:
    from assistant.prompt import Turn

    history = [Turn("user", "My card 4111 1111 1111 1111 was charged twice for a hotel.")]
    assistant.ask("What about it?", who(assistant, "bob"), history)
    details = last_record(assistant)["details"]
    assert "4111 1111 1111 1111" not in (details["standalone_question"] or "")
