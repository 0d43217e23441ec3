"""One request through the assistant, from the gate to the audit record.

gate.check_request -> (generative: licence of the model file) -> PII masking -> standalone
question (follow-ups) -> retrieval with the user's ACL filter -> the answerer (extractive or
generative) -> the response screen, sentence by sentence before the user sees it -> usage ->
audit -> :class:`~assistant.types.Answer`.

Every request is audited exactly once, whatever happens: answered, abstained, refused by a
policy, failed (the index unavailable, the model server down), or stopped by the user (the
caller closes the stream: the record says ``stopped`` with what had been shown). Tokens a
request consumed count against the quota in every outcome.

The collaborators come in through :class:`Collaborators`; a request never reaches back into
the :class:`~assistant.service.Assistant` that started it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.answerers.base import Answerer, Draft
from assistant.condense import standalone_question
from assistant.llm import ChatModel
from assistant.prompt import Turn
from assistant.retrieve import Retriever
from assistant.types import Answer, RetrievedChunk, SourceRef
from core.errors import EnclaveError, LLMError, ModelNotServableError
from core.settings import Settings
from policies.audit import AuditLog
from policies.decision import Decision
from policies.gate import UsageGate
from policies.identity import Principal


@dataclass(frozen=True)
class Collaborators:
    """What a request needs, handed in by the :class:`~assistant.service.Assistant`."""

    settings: Settings
    gate: UsageGate
    audit: AuditLog
    mask: Callable[[str], str]
    """The text as the answerer may see it (PII masked when the policy says so)."""
    mask_audit: Callable[[str], str]
    """Free text as the audit record may keep it (the question and answer columns are masked
    by the audit log itself; this covers the free text inside ``details``)."""
    retriever: Retriever
    answerer: Answerer
    licence: Callable[[], Any] | None
    """Generative answers only: the licence decision for the model file (a ModelIdentity)."""
    condenser: ChatModel | None
    """The LLM that rewrites follow-ups, when ``llm.condense_with_llm`` and generative."""


@dataclass
class AskRequest:
    parts: Collaborators
    question: str
    principal: Principal
    history: Sequence[Turn] = ()
    t0: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    policy_version: str | None = None
    model_name: str | None = None
    model_sha256: str | None = None
    retrieved: list[RetrievedChunk] = field(default_factory=list)
    draft: Draft | None = None
    standalone: str | None = None
    shown: list[str] = field(default_factory=list)
    _audited: bool = False

    # -- the stream ------------------------------------------------------------------------------
    def stream(self) -> Iterator[str | Answer]:
        """Text pieces as they may be shown, then the final :class:`Answer` (audited)."""
        try:
            answer, outcome = yield from self._steps()
        except GeneratorExit:
            self._record(None, "stopped", "request.stopped", "stopped by the user")
            raise
        except EnclaveError as exc:
            answer, outcome = self._refusal(exc.code, exc.message), "error"
        except Exception as exc:
            self._record(None, "error", "internal.error", f"{type(exc).__name__}: {exc}")
            raise
        self._record(answer, outcome, answer.reason_code, answer.reason)
        yield answer

    def _steps(self) -> Generator[str, None, tuple[Answer, str]]:
        """The request's steps: yields what may be shown, returns (answer, outcome)."""
        p = self.parts
        mark = time.perf_counter()
        if not self._decide("request", p.gate.check_request(self.principal, self.question)):
            return self._refusal_from_decisions(), "refused"
        mark = self._time("gate_s", mark)
        if p.licence is not None:
            try:
                ident = p.licence()
            except ModelNotServableError as exc:
                self._decide("licence", exc.decision)
                return self._refusal(exc.code, exc.message), "refused"
            self.model_name, self.model_sha256 = ident.model_name, ident.sha256
            self._decide("licence", ident.decision)
        else:
            self.model_name = p.answerer.model_id
        mark = self._time("licence_s", mark)

        question = p.mask(self.question)
        history = [Turn(h.role, p.mask(h.content)) for h in self.history]
        use_llm = p.condenser is not None and bool(history)
        try:
            self.standalone = standalone_question(question, history, p.condenser, use_llm)
        except LLMError:
            self.standalone = standalone_question(question, history, None, False)
        mark = self._time("condense_s", mark)

        result = p.retriever.search(
            self.standalone, self.principal, extra=p.settings.answer.extra_chunks
        )
        self.retrieved = result.chunks + result.more
        mark = self._time("retrieve_s", mark)

        draft: Draft | None = None
        screened = ""
        for item in p.answerer.answer(self.standalone, self.retrieved, history):
            if isinstance(item, Draft):
                draft = item
                break
            screened += item
            verdict = p.gate.check_response(self.principal, screened)
            if not verdict.allowed:
                self._decide("response", verdict)
                return self._refusal(verdict.reason_code, verdict.message), "refused"
            if not self.shown:
                self.timings["first_token_s"] = time.perf_counter() - self.t0
            self.shown.append(item)
            yield item
        if draft is None:
            raise LLMError("the answerer ended without an answer", code="llm.error")
        self.draft = draft
        self._time("answer_s", mark)
        if not draft.abstained:
            self._decide("response", p.gate.check_response(self.principal, draft.text))
        answer = Answer(
            answer=draft.text,
            citations=draft.citations,
            abstained=draft.abstained,
            reason=draft.reason,
            reason_code=draft.reason_code,
            standalone_question=self.standalone,
            tokens=dict(draft.tokens),
            mode=p.answerer.mode,
            also_retrieved=draft.also_retrieved,
            grounding=draft.grounding,
        )
        return answer, "abstained" if draft.abstained else "answered"

    # -- helpers -------------------------------------------------------------------------------
    def _time(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = now - since
        return now

    def _decide(self, stage: str, decision: Decision | Any) -> bool:
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

    def _refusal_from_decisions(self) -> Answer:
        last = self.decisions[-1]
        return self._refusal(str(last["reason_code"]), str(last["message"]))

    def _refusal(self, code: str, message: str) -> Answer:
        if not self.decisions or self.decisions[-1]["reason_code"] != code:
            self.decisions.append(
                {"stage": "answer", "allowed": False, "reason_code": code, "message": message}
            )
        return Answer(
            answer="",
            refused=True,
            reason=message,
            reason_code=code,
            standalone_question=self.standalone,
            tokens=dict(self.draft.tokens) if self.draft else {},
            mode=self.parts.answerer.mode,
            also_retrieved=[SourceRef.of(c) for c in self.retrieved],
        )

    def _record(
        self, answer: Answer | None, outcome: str, code: str | None, reason: str | None
    ) -> None:
        """Usage and the audit record, once per request."""
        if self._audited:
            return
        self._audited = True
        p = self.parts
        self.timings["total_s"] = time.perf_counter() - self.t0
        draft = self.draft
        tokens = dict(draft.tokens) if draft else {}
        if sum(tokens.values()):
            p.gate.record_usage(self.principal, sum(tokens.values()))
        citations = answer.citations if answer else []
        text = answer.answer if answer and answer.answer else "".join(self.shown) or None
        details: dict[str, Any] = {
            "outcome": outcome,
            "reason_code": code,
            "reason": reason if outcome in ("error", "stopped") else None,
            "answerer": p.answerer.mode,
            "standalone_question": p.mask_audit(self.standalone) if self.standalone else None,
            "given_to_model": [c.chunk_id for c in (draft.given if draft else [])],
            "cited": [c.chunk_id for c in citations],
            "support": round(draft.support, 4) if draft else None,
            "grounding": draft.grounding.to_json() if draft and draft.grounding else None,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
            **({"answerer_details": draft.details} if draft and draft.details else {}),
        }
        audit_id = p.audit.append(
            "refusal" if outcome in ("refused", "error") else "ask",
            principal=self.principal,
            question=self.question,
            retrieved=[{"doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in self.retrieved],
            model_name=self.model_name or p.answerer.model_id,
            model_sha256=self.model_sha256,
            policy_version=self.policy_version,
            decisions=self.decisions,
            answer=text,
            latency_ms=self.timings["total_s"] * 1000,
            prompt_tokens=tokens.get("prompt"),
            completion_tokens=tokens.get("completion"),
            details=details,
        )
        if answer is not None:
            answer.audit_id = str(audit_id)
            answer.timings = dict(self.timings)
