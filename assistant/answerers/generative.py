"""The generative answerer: an instruction-tuned LLM writes the answer from the permitted chunks.

Production serves Llama 3 70B Instruct behind an OpenAI-compatible server; a workstation can run
an instruct GGUF in-process. The model must be a chat model: a GGUF without a chat template
(a base model) is refused (``llm.not_chat_model``) unless ``llm.allow_base_model`` is set, which
exists only so tests and benchmarks can drive the llama.cpp seam with the small packaged base
model.

Around the model:

- no model call when the permitted sources carry too little of the question: the same
  sentence-level evidence as the extractive answerer decides to abstain (:mod:`assistant.evidence`);
- the prompt is budgeted exactly into the context window (:mod:`assistant.prompt`);
- the raw stream passes :class:`~assistant.hygiene.StreamGuard`: stop sequences, loop guard,
  whole sentences only, and an echo of the system prompt ends in a refusal
  (``llm.prompt_echo``) instead of being shown;
- the finished text is grounding-checked (:mod:`assistant.grounding`): unsupported sentences and
  numbers that no cited source contains are reported with the answer and in the audit record;
- citations are the sources the model cited with ``[n]``; when it cites none, the sources that
  the grounding check matched its sentences to (``citations_from = "grounding"`` in the audit
  record), and when nothing matches either, no citation at all: an uncited source is never
  presented as one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from assistant import grounding
from assistant.answerers.base import Draft, abstention
from assistant.citations import cited_numbers
from assistant.evidence import Evidence
from assistant.gguf import read_metadata
from assistant.hygiene import STOP_SEQUENCES, PromptEcho, StreamGuard
from assistant.llm import ChatLLM, StreamStats
from assistant.prompt import Turn, fit_prompt
from assistant.types import Citation, RetrievedChunk, SourceRef
from core.errors import LLMError
from core.settings import Settings

MIN_MATCH = 0.5


def require_chat_model(llm: ChatLLM, settings: Settings) -> None:
    """Refuse a GGUF without a chat template as a chat model (see the module docstring)."""
    path: Path | None = llm.model_path
    if settings.llm.backend != "llama_cpp" or path is None or settings.llm.allow_base_model:
        return
    info = read_metadata(path)
    if not info.chat_template:
        raise LLMError(
            f"{path.name} has no chat template: it is a base (not instruction-tuned) model and "
            "cannot follow the answering rules. Configure an instruct model (llm.model_path), "
            "or use answer.mode = 'extractive'",
            code="llm.not_chat_model",
        )


class GenerativeAnswerer:
    mode = "generative"

    def __init__(self, llm: ChatLLM, evidence: Evidence, settings: Settings) -> None:
        self._llm = llm
        self._evidence = evidence
        self._embedder = evidence.embedder
        self._settings = settings
        self._checked = False

    @property
    def model_id(self) -> str:
        return self._llm.model_id

    @property
    def llm(self) -> ChatLLM:
        return self._llm

    def warm_up(self) -> None:
        if not self._checked:
            require_chat_model(self._llm, self._settings)
            self._checked = True

    def answer(
        self, question: str, chunks: Sequence[RetrievedChunk], history: Sequence[Turn] = ()
    ) -> Iterator[str | Draft]:
        self.warm_up()
        cfg = self._settings.llm
        scored = self._evidence.score(question, chunks) if chunks else []
        support = self._evidence.support(scored[0]) if scored else 0.0
        if support < self._evidence.tuning.min_support:
            draft = abstention(chunks, support)
            yield draft.text
            yield draft
            return
        plan = fit_prompt(
            question,
            chunks,
            history,
            count_tokens=self._llm.count_tokens,
            context_window=self._llm.context_window,
            reserve=cfg.max_answer_tokens,
        )
        given = plan.chunks
        stats = StreamStats()
        guard = StreamGuard()
        try:
            for piece in self._llm.stream(
                plan.messages, cfg.max_answer_tokens, stats, stop=STOP_SEQUENCES
            ):
                shown = guard.feed(piece)
                if shown:
                    yield shown
                if guard.stopped:
                    break
            tail = guard.finish()
            if tail:
                yield tail
        except PromptEcho:
            raise LLMError(
                "the model started to repeat its instructions instead of answering; the answer "
                "was withheld",
                code="llm.prompt_echo",
            ) from None
        text = guard.released.strip()
        if not text:  # the model stopped at once (or only emitted what hygiene removes)
            raise LLMError(
                "the model returned no answer text; ask again, or rephrase the question",
                code="llm.empty_answer",
            )
        tokens = {
            "prompt": stats.prompt_tokens or plan.prompt_tokens,
            "completion": stats.completion_tokens,
        }
        numbers = cited_numbers(text, len(given))
        cited = [n - 1 for n in numbers]
        check, matches = grounding.check(text, given, cited, self._embedder, min_match=MIN_MATCH)
        source = "model"
        if not cited:
            cited = sorted({m.chunk for m in matches if m.chunk is not None})
            source = "grounding"
        spans: dict[int, list[tuple[int, int]]] = {}
        for m in matches:
            if m.chunk is not None and m.span is not None:
                spans.setdefault(m.chunk, []).append(m.span)
        citations = [Citation.of(i + 1, given[i], spans.get(i, [])) for i in cited]
        used = set(cited)
        yield Draft(
            text=text,
            citations=citations,
            also_retrieved=[SourceRef.of(c) for i, c in enumerate(chunks) if i not in used],
            grounding=check,
            support=support,
            given=list(given),
            tokens=tokens,
            details={
                "citations_from": source if citations else "none",
                "stopped_by": guard.reason,
                "dropped_sources": plan.dropped,
            },
        )
