"""Which numbered sources a generated answer cites (``[2]``, ``[1, 3]``, ``[source 2]``).

Only chunks that were in the prompt can be cited: numbers outside ``1..n`` are ignored.
"""

from __future__ import annotations

import re

_BRACKET = re.compile(r"\[\s*((?:sources?\s*)?\d+(?:\s*[,;&]\s*(?:sources?\s*)?\d+)*)\s*\]", re.I)
_NUMBER = re.compile(r"\d+")


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers referenced in ``answer``, in first-use order."""
    seen: list[int] = []
    for match in _BRACKET.finditer(answer):
        for num in _NUMBER.findall(match.group(1)):
            n = int(num)
            if 1 <= n <= n_sources and n not in seen:
                seen.append(n)
    return seen
