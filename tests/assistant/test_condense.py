from __future__ import annotations

from assistant.condense import condense_rule, needs_context, standalone_question
from assistant.prompt import Turn


def test_self_contained_question_is_kept() -> None:
    q = "How many weeks of paid parental leave do employees get?"
    assert not needs_context(q)
    assert condense_rule(q, [Turn("user", "What about travel?")]) == q


def test_follow_up_gets_the_previous_user_question() -> None:
    history = [Turn("user", "What is the travel card policy?"), Turn("assistant", "You need one.")]
    assert condense_rule("Who pays for it?", history) == (
        "What is the travel card policy? Who pays for it?"
    )


def test_no_history_means_the_question_itself() -> None:
    assert standalone_question("  And it?  ", [], None, use_llm=True) == "And it?"
