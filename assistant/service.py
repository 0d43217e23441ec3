"""The assistant's request pipeline.

authenticate (the caller passes the principal) -> ``gate.check_request`` -> licence check of
the model file (cached) -> PII masking -> standalone question (follow-ups) -> retrieval with
the user's ACL filter -> abstain without the LLM when nothing is relevant enough -> budget the
prompt with the model's tokenizer -> generate (streaming) -> ``gate.check_response`` -> usage
-> audit append -> :class:`Answer`. Every outcome, refusals and errors included, is audited.

Thread-safe: each request keeps its state on the stack; the retriever and the in-process
model serialize their own engine calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from assistant.citations import build_citations
from assistant.condense import standalone_question
from assistant.llm import ChatLLM, StreamStats, load_llm
from assistant.modelcheck import ModelIdentity, verify_servable
from assistant.prompt import ANSWER_STOPS, Turn, fit_prompt
from assistant.retrieve import RetrievalResult, Retriever
from assistant.types import Answer, RetrievedChunk
from core.errors import EnclaveError, LLMError, ModelNotServableError, PromptTooLongError
from core.settings import Settings
from policies.identity import Principal

if TYPE_CHECKING:
    from ingest.index.base import VectorIndex
    from policies.service import PolicyService

ABSTAIN_MESSAGE = (
    "The documents you have access to do not answer this question, so I won't guess. "
    "Try rephrasing it, or ask someone who can see the relevant documents."
)
LICENCE_TTL_S = 30.0


class Assistant:
    def __init__(
        self,
        settings: Settings,
        policies: PolicyService,
        retriever: Retriever,
        index: VectorIndex | None = None,
        llm: ChatLLM | None = None,
    ) -> None:
        self.settings = settings
        self.policies = policies
        self.retriever = retriever
        self._index = index
        self._llm = llm
        self._llm_lock = threading.Lock()
        self._licence_lock = threading.Lock()
        self._licence: tuple[float, ModelIdentity] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        policies: PolicyService | None = None,
        index: VectorIndex | None = None,
    ) -> Assistant:
        """``index``: an already open index to share (the UI's sync runs through it too)."""
        from ingest.encoding.embed import load_embedder
        from ingest.encoding.sparse import encode_query
        from ingest.index import open_index

        if policies is None:
            from policies.service import PolicyService

            policies = PolicyService.from_settings(settings)
        if settings.retrieval.serving_torch_threads is not None:
            import torch

            torch.set_num_threads(settings.retrieval.serving_torch_threads)
        owned = None
        if index is None:
            index = owned = open_index(settings)
        embedder = load_embedder(settings.embedding)
        retriever = Retriever(index, embedder, settings.retrieval, encode_query)
        # close() releases only an index opened here; a shared one stays with its owner
        return cls(settings, policies, retriever, index=owned)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    # -- pieces ------------------------------------------------------------------------------
    @property
    def llm(self) -> ChatLLM:
        with self._llm_lock:
            if self._llm is None:
                self._llm = load_llm(self.settings)
            return self._llm

    def model_identity(self) -> ModelIdentity:
        """Licence decision for the configured model, re-asked every ``LICENCE_TTL_S``; the
        GGUF header and digest are read once per process (the digest is re-checked by the
        licence gate against the file's size and mtime)."""
        with self._licence_lock:
            now = time.monotonic()
            if self._licence is not None and now - self._licence[0] < LICENCE_TTL_S:
                return self._licence[1]
            known = self._licence[1] if self._licence is not None else None
            ident = verify_servable(self.settings, self.policies, known)
            self._licence = (now, ident)
            return ident

    def retrieve(
        self, question: str, principal: Principal, k: int | None = None
    ) -> list[RetrievedChunk]:
        """Ranked chunks this principal may read (empty for no groups)."""
        return self.retriever.search(question, principal, k=k).chunks

    def search(self, question: str, principal: Principal, k: int | None = None) -> RetrievalResult:
        return self.retriever.search(question, principal, k=k)

    # -- asking ------------------------------------------------------------------------------
    def ask(self, question: str, principal: Principal, history: Sequence[Turn] = ()) -> Answer:
        for item in self.ask_stream(question, principal, history):
            if isinstance(item, Answer):
                return item
        raise RuntimeError("ask_stream ended without an Answer")  # pragma: no cover

    def ask_stream(
        self, question: str, principal: Principal, history: Sequence[Turn] = ()
    ) -> Iterator[str | Answer]:
        """Answer text pieces as they are generated, then the final :class:`Answer`."""
        run = _Run(self, question, principal, list(history))
        yield from run.execute()


class _Run:
    """One request: its timings, decisions and audit record."""

    def __init__(
        self, owner: Assistant, question: str, principal: Principal, history: list[Turn]
    ) -> None:
        self.a = owner
        self.question = question
        self.principal = principal
        self.history = history
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.decisions: list[dict[str, Any]] = []
        self.policy_version: str | None = None
        self.ident: ModelIdentity | None = None
        self.retrieved: list[RetrievedChunk] = []
        self.given: list[RetrievedChunk] = []
        self.tokens: dict[str, int] = {}
        self.standalone: str | None = None

    def _mark(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = now - since
        return now

    def _decide(self, stage: str, decision: Any) -> bool:
        self.policy_version = getattr(decision, "policy_version", None) or self.policy_version
        self.decisions.append(
            {
                "stage": stage,
                "allowed": bool(decision.allowed),
                "reason_code": decision.reason_code,
                "message": decision.message,
            }
        )
        return bool(decision.allowed)

    def execute(self) -> Iterator[str | Answer]:
        a = self.a
        gate = a.policies.gate
        t = time.perf_counter()
        decision = gate.check_request(self.principal, self.question)
        t = self._mark("gate_s", t)
        if not self._decide("request", decision):
            yield self._finish_refused(decision.reason_code, decision.message)
            return
        try:
            self.ident = a.model_identity()
        except ModelNotServableError as exc:
            self._decide("licence", exc.decision)
            yield self._finish_refused(exc.code, exc.message)
            return
        except EnclaveError as exc:
            self.decisions.append(
                {
                    "stage": "licence",
                    "allowed": False,
                    "reason_code": exc.code,
                    "message": exc.message,
                }
            )
            yield self._finish_refused(exc.code, exc.message)
            return
        self._decide("licence", self.ident.decision)
        t = self._mark("licence_s", t)

        mask = a.settings.policy.mask_pii_in_prompts
        question = a.policies.pii.mask(self.question) if mask else self.question
        history = [
            Turn(h.role, a.policies.pii.mask(h.content) if mask else h.content)
            for h in self.history
        ]
        use_llm = a.settings.llm.condense_with_llm
        try:
            self.standalone = standalone_question(
                question, history, a.llm if use_llm and history else None, use_llm
            )
        except LLMError:
            self.standalone = standalone_question(question, history, None, False)
        t = self._mark("condense_s", t)

        result = a.retriever.search(self.standalone, self.principal)
        self.retrieved = result.chunks
        t = self._mark("retrieve_s", t)
        if result.abstain:
            yield self._finish(ABSTAIN_MESSAGE, abstained=True)
            return

        try:
            llm = a.llm
            plan = fit_prompt(
                question,
                result.chunks,
                history,
                count_tokens=llm.count_tokens,
                context_window=llm.context_window,
                reserve=a.settings.llm.max_answer_tokens,
            )
        except (PromptTooLongError, LLMError) as exc:
            yield self._finish_refused(exc.code, exc.message)
            return
        self.given = plan.chunks
        self.tokens["prompt"] = plan.prompt_tokens
        t = self._mark("prompt_s", t)

        stats = StreamStats()
        pieces: list[str] = []
        try:
            answer_tokens = a.settings.llm.max_answer_tokens
            for piece in llm.stream(plan.messages, answer_tokens, stats, stop=ANSWER_STOPS):
                if not pieces:
                    self.timings["first_token_s"] = time.perf_counter() - self.t0
                pieces.append(piece)
                yield piece
        except LLMError as exc:
            yield self._finish_refused(exc.code, exc.message, partial="".join(pieces))
            return
        t = self._mark("generate_s", t)
        if stats.prompt_tokens:
            self.tokens["prompt"] = stats.prompt_tokens
        self.tokens["completion"] = stats.completion_tokens or len(pieces)
        text = "".join(pieces).strip()

        decision = gate.check_response(self.principal, text)
        self._mark("gate_response_s", t)
        if not self._decide("response", decision):
            yield self._finish_refused(decision.reason_code, decision.message, partial=text)
            return
        gate.record_usage(self.principal, sum(self.tokens.values()))
        yield self._finish(text)

    # -- endings -----------------------------------------------------------------------------
    def _finish(self, text: str, abstained: bool = False) -> Answer:
        citations, by_model = build_citations(text, self.given) if self.given else ([], False)
        answer = Answer(
            answer=text,
            citations=citations,
            cited_by_model=by_model,
            abstained=abstained,
            reason="no accessible document is relevant enough" if abstained else None,
            reason_code="retrieval.abstain" if abstained else None,
            standalone_question=self.standalone,
            tokens=dict(self.tokens),
        )
        return self._audit(answer, "abstained" if abstained else "answered")

    def _finish_refused(self, code: str, message: str, partial: str = "") -> Answer:
        answer = Answer(
            answer="",
            refused=True,
            reason=message,
            reason_code=code,
            standalone_question=self.standalone,
            tokens=dict(self.tokens),
        )
        return self._audit(answer, "refused", partial=partial)

    def _audit(self, answer: Answer, outcome: str, partial: str = "") -> Answer:
        self.timings["total_s"] = time.perf_counter() - self.t0
        answer.timings = dict(self.timings)
        ident = self.ident
        answer.audit_id = str(
            self.a.policies.audit.append(
                "refusal" if answer.refused else "ask",
                principal=self.principal,
                question=self.question,
                retrieved=[{"doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in self.retrieved],
                model_name=ident.model_name if ident else self.a.settings.llm.model_name,
                model_sha256=ident.sha256 if ident else None,
                policy_version=self.policy_version,
                decisions=self.decisions,
                answer=answer.answer or partial or None,
                latency_ms=self.timings["total_s"] * 1000,
                prompt_tokens=self.tokens.get("prompt"),
                completion_tokens=self.tokens.get("completion"),
                details={
                    "outcome": outcome,
                    "reason_code": answer.reason_code,
                    "standalone_question": self.standalone,
                    "given_to_model": [c.chunk_id for c in self.given],
                    "cited": [c.chunk_id for c in answer.citations],
                    "cited_by_model": answer.cited_by_model,
                    "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
                },
            )
        )
        return answer
