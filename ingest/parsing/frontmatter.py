"""Markdown front matter: the YAML block between ``---`` lines at the top of a page.

Static-site handbooks (Jekyll, Hugo, Docusaurus, MkDocs, Obsidian notes) keep a page's real
title there, often with keywords written for search ("vacation, bereavement, jury duty" on a
page titled "Leave types"). Left in the text, the block became the first chunk's body ("title:
Leave types keywords: … redirect_from: …") and the document's title fell back to the file
name ("leave"). Read as metadata, the title names every chunk of the page in its context line
and the keywords carry the words employees search with (docs/parsing.md).

Only a mapping that parses as YAML counts: a page that merely starts with a ``---`` rule keeps
its text. Fields read: ``title``; ``description`` / ``summary`` / ``subtitle`` (the first one
present); ``keywords`` / ``tags`` (a list or a comma-separated string); ``redirect_to`` (a page
that only points elsewhere keeps that pointer as its text, see :func:`stub_text`). Everything
else (``redirect_from``, layout keys, sidebars) is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MAX_LINES = 200
"""A front-matter block longer than this is not one (a page that opens with a rule)."""
_MAX_FIELD_CHARS = 300
_MAX_KEYWORDS = 40


@dataclass(frozen=True)
class FrontMatter:
    title: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    redirect_to: str | None = None

    def stub_text(self) -> str | None:
        """Text for a page whose body is empty: its title, description and redirect target
        ("Open source policy. Moved to: https://…"), so a search for it still finds where it
        went; ``None`` when the front matter says nothing worth indexing."""
        parts = [p for p in (self.title, self.description) if p]
        if self.redirect_to:
            parts.append(f"Moved to: {self.redirect_to}")
        return ". ".join(parts) if self.redirect_to or self.description else None


def split_front_matter(text: str) -> tuple[FrontMatter, str]:
    """``(front matter, body)``; no front matter -> ``(FrontMatter(), text)`` unchanged."""
    lead = text.lstrip("\ufeff")
    lines = lead.split("\n")
    if not lines or lines[0].strip() != "---":
        return FrontMatter(), text
    for end in range(1, min(len(lines), _MAX_LINES + 1)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return FrontMatter(), text
    data = _load_yaml("\n".join(lines[1:end]))
    if data is None:
        return FrontMatter(), text
    keywords = _words(data.get("keywords")) or _words(data.get("tags"))
    description = next(
        (v for v in (_text(data.get(k)) for k in ("description", "summary", "subtitle")) if v),
        None,
    )
    body = "\n".join(lines[end + 1 :])
    front = FrontMatter(
        _text(data.get("title")), description, keywords, _text(data.get("redirect_to"))
    )
    return front, body


def _load_yaml(block: str) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    text = " ".join(str(value).split())
    return text[:_MAX_FIELD_CHARS] or None


def _words(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return ()
    out: list[str] = []
    for item in items:
        text = _text(item)
        if text and text.casefold() not in (o.casefold() for o in out):
            out.append(text)
    return tuple(out[:_MAX_KEYWORDS])
