"""The assistant: the composition root of retrieval, the answerer and the policies.

``Assistant.from_settings`` opens (or shares) the index, loads the embedding model, and builds
the answerer that ``answer.mode`` names: ``extractive`` (the embedded default: quoted sentences
from the sources, no generative model) or ``generative`` (the configured LLM, grounding
checked). Heavy loading happens in :meth:`Assistant.warm_up` (the UI runs it in the background
at start; the CLI before its first question), never as a side effect of a property. Each
question runs as one :class:`~assistant.request.AskRequest`.

Thread-safe: a request keeps its state in its own object; the retriever and the in-process
model serialize their engine calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from assistant.answerers.base import Answerer
from assistant.answerers.extractive import ExtractiveAnswerer
from assistant.evidence import Evidence, Tuning
from assistant.llm import ChatModel, load_llm
from assistant.modelcheck import ModelIdentity, verify_servable
from assistant.prompt import Turn
from assistant.request import AskRequest, Collaborators
from assistant.retrieve import RetrievalResult, Retriever
from assistant.types import Answer
from core.settings import Settings
from policies.identity import Principal

if TYPE_CHECKING:
    from ingest.index.base import VectorIndex
    from policies.service import PolicyService

LICENCE_TTL_S = 30.0


class Assistant:
    def __init__(
        self,
        settings: Settings,
        policies: PolicyService,
        retriever: Retriever,
        answerer: Answerer,
        *,
        index: VectorIndex | None = None,
        condenser: ChatModel | None = None,
    ) -> None:
        self.settings = settings
        self.policies = policies
        self.retriever = retriever
        self.answerer = answerer
        self._index = index
        self._condenser = condenser
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
        from ingest.encoding.threads import set_threads
        from ingest.index import open_index

        if policies is None:
            from policies.service import PolicyService

            policies = PolicyService.from_settings(settings)
        set_threads(settings.retrieval.serving_torch_threads)
        owned = None
        if index is None:
            index = owned = open_index(settings)
        embedder = load_embedder(settings.embedding)
        retriever = Retriever(index, embedder, settings.retrieval, encode_query)
        tuning = Tuning()
        if settings.answer.min_support is not None:
            tuning = Tuning(min_support=settings.answer.min_support)
        answerer: Answerer
        condenser = None
        if settings.answer.mode == "generative":
            from assistant.answerers.generative import GenerativeAnswerer

            llm = load_llm(settings)
            answerer = GenerativeAnswerer(llm, Evidence(embedder, tuning), settings)
            condenser = llm if settings.llm.condense_with_llm else None
        else:
            answerer = ExtractiveAnswerer(embedder, tuning)
        # close() releases only an index opened here; a shared one stays with its owner
        return cls(settings, policies, retriever, answerer, index=owned, condenser=condenser)

    def warm_up(self) -> None:
        """Load models and check the model's licence now rather than at the first question."""
        self.answerer.warm_up()
        if self.answerer.mode == "generative":
            self.model_identity()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

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

    def search(self, question: str, principal: Principal, k: int | None = None) -> RetrievalResult:
        """Ranked chunks this principal may read (nothing for a principal without groups)."""
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
        """Answer text pieces as they may be shown, then the final :class:`Answer`. Closing
        the stream early (``.close()``: the user pressed Stop) ends the request; its audit
        record says ``stopped``."""
        generative = self.answerer.mode == "generative"
        parts = Collaborators(
            settings=self.settings,
            gate=self.policies.gate,
            audit=self.policies.audit,
            mask=self.policies.mask_prompt,
            mask_audit=self.policies.mask_for_audit,
            retriever=self.retriever,
            answerer=self.answerer,
            licence=self.model_identity if generative else None,
            condenser=self._condenser,
        )
        return AskRequest(parts, question, principal, history).stream()
