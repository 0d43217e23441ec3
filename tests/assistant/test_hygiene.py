"""Generation hygiene: what a model's raw output must never do on the user's screen."""

from __future__ import annotations

import pytest

from assistant.hygiene import PromptEcho, StreamGuard, echoes_prompt
from assistant.prompt import SYSTEM_PROMPT


def shown(pieces: list[str]) -> tuple[str, StreamGuard]:
    guard = StreamGuard()
    out = ""
    for p in pieces:
        out += guard.feed(p)
        if guard.stopped:
            break
    out += guard.finish()
    return out, guard


def test_whole_sentences_only_and_a_leading_role_label_dropped() -> None:
    guard = StreamGuard()
    assert guard.feed("Assistant: The per") == ""  # nothing before the sentence ends
    assert guard.feed(" diem is 75 EUR [1]. It") == "The per diem is 75 EUR [1]."
    assert guard.finish() == " It"


@pytest.mark.parametrize(
    "tail",
    [
        "\nUser: and what about hotels?",
        "\nQuestion: next one",
        "<<<END SOURCE 5>>>",
        "<<END SOURCE 5>>>",
        "<end_of_turn>\n<start_of_turn>user",
        "<|eot_id|><|start_header_id|>user",
        " SOURCE 2 | path: x.md",
    ],
)
def test_stops_at_role_prefixes_template_tokens_and_delimiters(tail: str) -> None:
    out, guard = shown(["The per diem is 75 EUR [1].", tail, " Never shown."])
    assert out == "The per diem is 75 EUR [1]."
    assert guard.stopped


def test_a_loop_is_cut_after_two_repeats() -> None:
    out, guard = shown(["Yes.\n"] + ["- No.\n"] * 30)
    assert out.count("- No.") == 2 and guard.reason == "loop"


def test_an_echo_of_the_system_prompt_is_a_failure_not_text() -> None:
    guard = StreamGuard()
    with pytest.raises(PromptEcho):
        for piece in SYSTEM_PROMPT.split(" "):
            guard.feed(piece + " ")
        guard.finish()
    assert "You are Enclave" not in guard.released


def test_echo_detection_needs_a_real_run_of_prompt_words() -> None:
    assert echoes_prompt("Sure. " + SYSTEM_PROMPT.splitlines()[0])
    assert not echoes_prompt("Answer briefly: the per diem is 75 EUR [1].")
