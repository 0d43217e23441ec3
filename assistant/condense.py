"""Follow-up questions: turn conversation + new question into a standalone search question.

Two ways, chosen by ``llm.condense_with_llm``:

- the LLM rewrites the question (within its context budget, at most 64 new tokens). Good with
  an instruction-tuned model; the small base model mostly continues the text instead, so its
  output is checked and the rule below is used when it looks wrong;
- a deterministic rule (default): a question that leans on earlier turns (pronouns such as
  "it"/"that"/"they", or very short) is prefixed with the previous user question. Hybrid
  retrieval then sees the earlier topic words; the prompt still carries the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.messages import HumanMessage, SystemMessage

from assistant.llm import ChatModel
from assistant.prompt import Turn

_REFERRING = re.compile(
    r"\b(it|its|that|this|those|these|they|them|their|there|he|she|his|her|same|above|"
    r"previous|former|latter|one|ones|also|else|more)\b",
    re.I,
)
_MIN_WORDS = 5
MAX_CONDENSED_CHARS = 400
CONDENSE_TOKENS = 64

CONDENSE_INSTRUCTIONS = (
    "Rewrite the user's last question as one standalone question that can be understood "
    "without the conversation. Reply with the question only."
)


def needs_context(question: str) -> bool:
    words = question.split()
    return len(words) < _MIN_WORDS or bool(_REFERRING.search(question))


def condense_rule(question: str, history: Sequence[Turn]) -> str:
    """Deterministic standalone question."""
    previous = [t.content.strip() for t in history if t.role == "user" and t.content.strip()]
    if not previous or not needs_context(question):
        return question.strip()
    return f"{previous[-1][:MAX_CONDENSED_CHARS]} {question.strip()}"


def _plausible(candidate: str, question: str) -> bool:
    text = candidate.strip()
    if not text or len(text) > MAX_CONDENSED_CHARS or "\n\n" in text:
        return False
    if text.lower().startswith(("user:", "assistant:", "rewrite", "you are")):
        return False
    return len(text.split()) >= min(3, len(question.split()))


def condense_llm(question: str, history: Sequence[Turn], llm: ChatModel) -> str:
    """LLM rewrite, validated; falls back to :func:`condense_rule`."""
    recent = list(history)[-4:]
    transcript = "\n".join(
        f"{'User' if t.role == 'user' else 'Assistant'}: {t.content.strip()[:400]}" for t in recent
    )
    messages = [
        SystemMessage(content=CONDENSE_INSTRUCTIONS),
        HumanMessage(content=f"Conversation:\n{transcript}\n\nLast question: {question.strip()}"),
    ]
    if llm.count_tokens(messages) + CONDENSE_TOKENS > llm.context_window:
        return condense_rule(question, history)
    candidate = llm.invoke(messages, CONDENSE_TOKENS).strip().strip('"').split("\n")[0]
    return candidate if _plausible(candidate, question) else condense_rule(question, history)


def standalone_question(
    question: str, history: Sequence[Turn], llm: ChatModel | None, use_llm: bool
) -> str:
    if not history:
        return question.strip()
    if use_llm and llm is not None:
        return condense_llm(question, history, llm)
    return condense_rule(question, history)
