"""Generation hygiene: what a model's raw output must never do before a user sees it.

Small and base models echo their prompt ("You are Enclave, an assistant that ..."), print source
delimiters, start a fake dialogue ("User: ... Assistant: ...") or loop ("- No." thirty times).
:class:`StreamGuard` sits between the model's token stream and the user:

- generation stops at role prefixes, chat-template tokens and source delimiters (the stop
  sequences are also passed to the backend; the guard enforces them whatever the backend does);
- a loop (a sentence or line repeated, or a phrase recurring) ends generation;
- text is released only in whole sentences, each checked first, so a half-printed delimiter or
  the start of a prompt echo never reaches the screen;
- an echo of the system prompt is a failure (``llm.prompt_echo``): the caller replaces the
  answer by a refusal instead of showing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.prompt import SYSTEM_PROMPT

STOP_SEQUENCES = [
    "<<<",
    "<<END",
    "END SOURCE",
    "\nQuestion:",
    "\nUser:",
    "\nAssistant:",
    "\nSources:",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|im_start|>",
    "<|im_end|>",
    "<end_of_turn>",
    "<start_of_turn>",
]
_LEADING_ROLE = re.compile(r"^\s*(?:assistant|answer|enclave)\s*:\s*", re.I)
_ROLE_INSIDE = re.compile(r"(?:^|\n)\s*(?:user|human|question|system)\s*:", re.I)
_DELIMITER = re.compile(r"<<<|>>>|\bEND SOURCE\b|\bSOURCE \d+\s*\|", re.I)
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?\n])(?=\s)")
_SHINGLE = 6


def _shingles(text: str, n: int = _SHINGLE) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    return {tuple(words[i : i + n]) for i in range(max(len(words) - n + 1, 0))}


_PROMPT_SHINGLES = _shingles(SYSTEM_PROMPT)


def echoes_prompt(text: str) -> bool:
    """True when ``text`` repeats a run of six or more words of the system prompt."""
    return bool(_shingles(text) & _PROMPT_SHINGLES)


class PromptEcho(Exception):
    """The model started to repeat its instructions."""


@dataclass
class StreamGuard:
    """Feed raw model text with :meth:`feed`; it returns what may be shown now."""

    max_repeats: int = 2
    buffer: str = ""
    released: str = ""
    stopped: bool = False
    reason: str | None = None
    _seen: dict[str, int] = field(default_factory=dict)

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.buffer += piece
        cut = self._stop_at(self.buffer)
        if cut is not None:
            self.buffer = self.buffer[:cut]
            self.stopped = True
            self.reason = self.reason or "stop_sequence"
        return self._release(final=self.stopped)

    def finish(self) -> str:
        """Release what remains once the model has stopped."""
        self.stopped = True
        return self._release(final=True)

    def _stop_at(self, text: str) -> int | None:
        cuts = [text.find(s) for s in STOP_SEQUENCES if s in text]
        inside = _ROLE_INSIDE.search(text)
        if inside:
            cuts.append(inside.start())
        delim = _DELIMITER.search(text)
        if delim:
            cuts.append(delim.start())
        return min(cuts) if cuts else None

    def _release(self, *, final: bool) -> str:
        text = self.buffer
        if not self.released:
            stripped = _LEADING_ROLE.sub("", text)
            if stripped != text:
                self.buffer = text = stripped
        if final:
            ready, rest = text, ""
        else:
            end = max(text.rfind(". "), text.rfind("\n"), text.rfind("? "), text.rfind("! "))
            if end < 0:
                return ""
            ready, rest = text[: end + 1], text[end + 1 :]
        out: list[str] = []
        for piece in _SENTENCE_END.split(ready):
            line = piece.strip()
            if not line:
                out.append(piece)
                continue
            if echoes_prompt(self.released + "".join(out) + " " + line):
                self.stopped = True
                self.reason = "prompt_echo"
                raise PromptEcho(line)
            key = " ".join(_WORD.findall(line.casefold()))
            if key:
                self._seen[key] = self._seen.get(key, 0) + 1
                if self._seen[key] > self.max_repeats:
                    self.stopped = True
                    self.reason = "loop"
                    rest = ""
                    break
            out.append(piece)
        self.buffer = rest
        chunk = "".join(out)
        if not self.released:
            chunk = chunk.lstrip()
        if final:
            chunk = chunk.rstrip()
        self.released += chunk
        return chunk
