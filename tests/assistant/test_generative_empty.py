"""A generative answer with no text is an error the user is told about, never an empty bubble."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.answerers.generative import GenerativeAnswerer
from assistant.evidence import Evidence
from core.errors import LLMError
from core.settings import Settings
from tests.assistant.fakes import BagOfWordsEmbedder, chunk

TRAVEL = chunk(1, "Travel\nThe per diem abroad is 75 EUR per day.", path="travel.md")


class _Scripted:
    """A chat model that streams the given pieces (the ChatLLM surface the answerer uses)."""

    model_id = "scripted"
    model_path: Path | None = None
    context_window = 4096

    def __init__(self, pieces: Sequence[str]) -> None:
        self.pieces = list(pieces)

    def count_tokens(self, messages: Any) -> int:
        return sum(len(str(getattr(m, "content", m)).split()) for m in messages)

    def stream(self, messages: Any, max_tokens: int, stats: Any, stop: Any = None) -> Iterator[str]:
        yield from self.pieces


def _answer(pieces: Sequence[str]) -> list[object]:
    settings = Settings(answer={"mode": "generative"}, llm={"backend": "openai"})
    answerer = GenerativeAnswerer(
        _Scripted(pieces),  # type: ignore[arg-type]
        Evidence(BagOfWordsEmbedder()),
        settings,
    )
    return list(answerer.answer("what is the per diem abroad per day?", [TRAVEL]))


def test_an_empty_answer_is_an_error_with_a_code() -> None:
    with pytest.raises(LLMError) as exc:
        _answer(["", "  "])
    assert exc.value.code == "llm.empty_answer"


def test_an_answer_made_only_of_a_role_prefix_is_empty_too() -> None:
    with pytest.raises(LLMError) as exc:
        _answer(["User:", " what is the per diem?"])
    assert exc.value.code == "llm.empty_answer"


def test_a_real_answer_is_kept() -> None:
    out = _answer(["The per diem abroad is 75 EUR per day [1]."])
    assert "75 EUR" in "".join(p for p in out if isinstance(p, str))
