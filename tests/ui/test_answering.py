"""Stop: the page closes the assistant's generator, and what was written is kept as stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from assistant.types import Answer
from policies.identity import Principal
from tests.ui.apptest_helpers import button, html_text, no_exceptions, sign_in, texts
from tests.ui.conftest import UIEnv
from ui import runtime
from ui.answering import AnswerStream, Tick
from ui.chat import STOPPED, _history, _stopped


class FakeRequest:
    """A generator like ``ask_stream``: records how it ended."""

    def __init__(self, pieces: list[str], gate: threading.Event | None = None) -> None:
        self.pieces = pieces
        self.gate = gate
        self.outcome = "running"

    def __call__(self) -> Iterator[str | Answer]:
        try:
            for i, piece in enumerate(self.pieces):
                if i == 2 and self.gate is not None:
                    self.gate.wait(10)  # the model is slow to produce the third piece
                yield piece
            self.outcome = "answered"
            yield Answer(answer="".join(self.pieces))
        except GeneratorExit:
            self.outcome = "stopped"  # where the assistant audits the stopped request
            raise


def test_a_finished_stream_yields_pieces_then_the_answer() -> None:
    request = FakeRequest(["The ", "hotel ", "budget."])
    events = [e for e in AnswerStream(request()).start().events() if not isinstance(e, Tick)]
    assert events[:3] == ["The ", "hotel ", "budget."]
    assert isinstance(events[-1], Answer) and request.outcome == "answered"


def test_stop_closes_the_generator_even_while_it_waits_for_the_model() -> None:
    gate = threading.Event()
    request = FakeRequest(["one ", "two ", "three ", "four"], gate)
    stream = AnswerStream(request(), poll_s=0.05).start()
    seen: list[str] = []
    for event in stream.events():
        if isinstance(event, str):
            seen.append(event)
        if len(seen) == 2:
            break  # the page is interrupted here (the Stop click)
    stream.stop()
    time.sleep(0.2)
    assert request.outcome == "running"  # blocked in the model: closed once it returns
    gate.set()
    assert stream.wait_closed(5)
    assert request.outcome == "stopped"
    assert stream.pending_answer() is None


def test_an_error_of_the_assistant_reaches_the_page() -> None:
    def failing() -> Iterator[str | Answer]:
        yield "partial "
        raise RuntimeError("index unavailable")

    stream = AnswerStream(failing()).start()
    with pytest.raises(RuntimeError, match="index unavailable"):
        list(stream.events())


def test_a_stopped_answer_is_kept_marked_and_can_be_regenerated(use_config: UIEnv) -> None:
    store = runtime.for_key().history()
    conv = store.create("erin-stop", "Stopped question")
    store.add_message("erin-stop", conv.id, "user", "What is the hotel budget?")
    principal = Principal("erin-stop", frozenset({"staff"}))
    _stopped(principal, conv.id, None, "The hotel budget is")
    [question, answer] = store.messages("erin-stop", conv.id)
    assert answer.reason_code == STOPPED and answer.content == "The hotel budget is"
    assert answer.details == {"stopped": True}
    assert _history([question, answer]) == []  # a stopped answer is no context for follow-ups
    follow = store.add_message("erin-stop", conv.id, "user", "And in London?")
    assert [t.content for t in _history([question, answer, follow])] == []


def test_stopped_answer_on_the_page(use_config: UIEnv) -> None:
    at = sign_in("alice")
    store = runtime.for_key().history()
    conv = store.create("alice", "Stop probe")
    store.add_message("alice", conv.id, "user", "What is the hotel budget?")
    _stopped(Principal("alice", frozenset({"staff"})), conv.id, None, "The hotel budget is")
    at.query_params["c"] = conv.id
    at.run()
    no_exceptions(at)
    assert "Stopped before the answer was complete" in texts(at)
    assert "The hotel budget is" in html_text(at)
    button(at, "Regenerate").click()
    at.run()
    no_exceptions(at)
    [_, answer] = store.messages("alice", conv.id)
    assert answer.reason_code != STOPPED  # answered again


def _stopped_records(user: str) -> list[dict]:  # type: ignore[type-arg]
    audit = runtime.for_key().policies().audit
    return [
        r
        for r in audit.records(user_id=user)
        if (r.get("details") or {}).get("outcome") == "stopped"
    ]


def test_stopping_the_real_assistant_is_audited(use_config: UIEnv) -> None:
    """The contract with the assistant: closing ``ask_stream`` ends the request and writes its
    audit record with outcome ``stopped``. Generative mode on the packaged GGUF (the extractive
    default answers in one piece: nothing to stop), with this deployment's index and policies."""
    from assistant.service import Assistant

    resources = runtime.for_key()
    base = resources.settings
    settings = base.model_copy(
        update={
            "answer": base.answer.model_copy(update={"mode": "generative"}),
            "llm": base.llm.model_copy(update={"allow_base_model": True}),
        }
    )
    assistant = Assistant.from_settings(settings, resources.policies(), index=resources.index())
    principal = resources.policies().current_principal("cora")
    assert principal is not None
    before = len(_stopped_records("cora"))
    stream = AnswerStream(
        assistant.ask_stream(
            "Describe the travel policy for trains and hotels in detail.", principal
        )
    ).start()
    for event in stream.events():
        assert not isinstance(event, Answer), "the answer came in one piece: nothing to stop"
        if isinstance(event, str):
            break
    stream.stop()
    assert stream.wait_closed(120)
    assert len(_stopped_records("cora")) == before + 1


def test_history_keeps_answered_pairs_only() -> None:
    from assistant.history import StoredMessage

    u1 = StoredMessage(1, "user", "Hotels?")
    a1 = StoredMessage(2, "assistant", "180 EUR [1].")
    u2 = StoredMessage(3, "user", "Bomb?")
    a2 = StoredMessage(4, "assistant", "refused", refused=True)
    u3 = StoredMessage(5, "user", "And trains?")  # pending
    assert [(t.role, t.content) for t in _history([u1, a1, u2, a2, u3])] == [
        ("user", "Hotels?"),
        ("assistant", "180 EUR [1]."),
    ]


def test_a_question_left_without_answer_can_be_answered(use_config: UIEnv) -> None:
    """If a run is cut off before it stored anything, the question is not left dangling."""
    at = sign_in("alice")
    store = runtime.for_key().history()
    conv = store.create("alice", "Cut off")
    store.add_message("alice", conv.id, "user", "How are train tickets booked?")
    at.query_params["c"] = conv.id
    at.run()
    no_exceptions(at)
    assert "This question has no answer yet" in texts(at)
    button(at, "Answer it now").click()
    at.run()
    no_exceptions(at)
    assert [m.role for m in store.messages("alice", conv.id)] == ["user", "assistant"]
