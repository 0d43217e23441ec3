"""What the acceptable-use screen matches against: the text, and the text with its disguises
taken off.

Writing a request so a pattern misses it is easy: a digit for a letter (``b0mb``), an invisible
character inside a word (zero-width space, soft hyphen, word joiner), a letter from another
script that looks the same (Cyrillic ``о`` for Latin ``o``), full-width letters, an accent, a
hyphen in the middle of a word (``ransom-ware``). :func:`screen_views` returns the variants a
pattern is tried on, each undoing one more layer:

1. **plain**: Unicode NFKC (full-width and other compatibility forms become ordinary letters),
   invisible format characters removed (category Cf: zero-width space and joiners, soft hyphen,
   direction marks and overrides, BOM), whitespace collapsed;
2. **skeleton**: look-alike letters of other scripts (Cyrillic, Greek) mapped to the Latin letter
   they imitate, accents and other combining marks dropped (``cómo`` -> ``como``, so patterns
   for other languages can be written in plain ASCII);
3. **joined**: hyphens, underscores, dots, asterisks and apostrophes between two letters removed
   (``ransom-ware`` -> ``ransomware``);
4. **unleet**: in words that mix letters with digits or symbols, the usual substitutes read as
   letters (``0``->o, ``1``->i, ``3``->e, ``4``->a, ``5``->s, ``7``->t, ``8``->b, ``@``->a,
   ``$``->s, ``!``->i), once more with ``1``->l. Words without a letter (numbers, dates) stay.

A pattern hits when it matches any view. The views only ever *add* chances to match, so every
request the plain patterns caught is still caught; the negative tables in
tests/policies/test_acceptable_use.py check that ordinary questions still pass.
"""

from __future__ import annotations

import re
import unicodedata

# Letters of other scripts that render like a Latin letter (lower and upper case).
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
        "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J",
        # Greek
        "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
        "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
        "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
        # Latin look-alikes outside ASCII that NFKD keeps
        "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss",
    }
)  # fmt: skip
_INSIDE_WORD = re.compile(r"(?<=[A-Za-z])[-_.*'’·•]+(?=[A-Za-z])")
_WORD = re.compile(r"\S+")
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i"}
_LEET_I = str.maketrans({**_LEET, "1": "i", "|": "l"})
_LEET_L = str.maketrans({**_LEET, "1": "l", "|": "l"})
_LEETABLE = frozenset("0134578@$!|")


def plain(text: str) -> str:
    """View 1: NFKC, invisible format characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.split())


def skeleton(text: str) -> str:
    """View 2 (from view 1): look-alike letters to Latin, combining marks dropped."""
    text = unicodedata.normalize("NFKD", text.translate(_CONFUSABLES))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _unleet(text: str, table: dict[int, str]) -> str:
    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        if any(c.isalpha() for c in w) and any(c in _LEETABLE for c in w):
            # keep punctuation that ends the word (``b0mb?``), translate inside it
            core = w.rstrip("?.,;:!")
            return core.translate(table) + w[len(core) :]
        return w

    return _WORD.sub(word, text)


def screen_views(text: str) -> list[str]:
    """The distinct views of ``text`` a pattern is tried on (module docstring)."""
    first = plain(text)
    second = skeleton(first)
    third = _INSIDE_WORD.sub("", second)
    views = [first, second, third, _unleet(third, _LEET_I), _unleet(third, _LEET_L)]
    return list(dict.fromkeys(views))
