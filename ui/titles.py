"""Conversation titles and dates as the sidebar shows them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

TITLE_CHARS = 60
_SENTENCE_END = re.compile(r"(?<=[.?!])\s")


def short_title(question: str, limit: int = TITLE_CHARS) -> str:
    """A short title for a conversation from its first question: the first sentence of the
    first non-empty line, cut at a word boundary to at most ``limit`` characters."""
    line = next((ln for ln in question.splitlines() if ln.strip()), "")
    text = " ".join(line.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(first.split()) >= 3:
        text = first
    if not text:
        return "New conversation"
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"


def date_group(when: datetime, today: date) -> str:
    """The sidebar heading a conversation last used at ``when`` falls under."""
    day = when.date()
    if day >= today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day > today - timedelta(days=7):
        return "Previous 7 days"
    if day > today - timedelta(days=30):
        return "Previous 30 days"
    return when.strftime("%B %Y")
