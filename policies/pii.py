"""Detect and mask personal data in text (prompts before the LLM, audit records).

Kinds (each can be switched off with ``policy.pii_kinds``):

- ``email``: ``local@domain.tld``, internationalised too (``jörg@bücher.de``, ``用户@例子.广告``).
- ``iban``: country code, 2 check digits, 11-30 alphanumerics (spaces or dashes allowed in
  groups of 4, any letter case); only reported when the ISO 13616 mod-97 check passes, and
  masked whole (the longest run of groups that passes).
- ``card``: 13-19 digits (spaces, dashes or dots between groups), only when the Luhn check
  passes.
- ``us_ssn``: ``AAA-GG-SSSS`` or ``AAA GG SSSS`` with the SSA's never-issued ranges excluded
  (area 000, 666, 900-999; group 00; serial 0000).
- ``uk_nino``: two prefix letters (not D, F, I, Q, U, V; second not O; not BG, GB, KN, NK, NT,
  TN, ZZ), six digits, suffix A-D.
- ``se_personnummer``: ``YYMMDD-NNNN``, ``YYMMDD+NNNN`` or ``YYYYMMDDNNNN`` with a valid date
  (day + 60 for samordningsnummer) and the Luhn check digit.
- ``phone``: international ``+CC ...``, national numbers with a leading 0 (with separators, or
  9-12 digits without: ``0701234567``), and North American ``(AAA) BBB-CCCC``,
  ``AAA-BBB-CCCC``, ``AAA.BBB.CCCC``; 8-15 digits.

Overlaps are resolved in the order above (a card number is never also a phone number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from core.errors import ConfigError

ALL_KINDS: tuple[str, ...] = (
    "email",
    "iban",
    "card",
    "us_ssn",
    "uk_nino",
    "se_personnummer",
    "phone",
)
_LABELS = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "card": "[CARD]",
    "us_ssn": "[NATIONAL_ID]",
    "uk_nino": "[NATIONAL_ID]",
    "se_personnummer": "[NATIONAL_ID]",
    "phone": "[PHONE]",
}

# \w is Unicode-aware: internationalised local parts and domains (RFC 6531 / IDN).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{1,4}){3,8}\b")
_IBAN_GROUP = re.compile(r"[ -]?[A-Za-z0-9]{1,4}")
_CARD = re.compile(r"(?<![\d-])(?<!\d\.)\d(?:[ .-]?\d){12,18}(?![\d-]|\.\d)")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_PNR = re.compile(r"(?<![\d-])((?:19|20)?\d{2})(\d{2})(\d{2})([-+]?)(\d{3})(\d)(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,5}"
    r"|\(?0\d{1,4}\)?[ .-]\d{2,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{3}\) ?\d{3}-\d{4}|(?<![\d-])\d{3}-\d{3}-\d{4}|(?<![\d.])\d{3}\.\d{3}\.\d{4}(?!\.\d)"
    r"|(?<![\d.])0[1-9]\d{7,10})(?![\w-])"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "").replace("-", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _ssn_ok(m: re.Match[str]) -> bool:
    area, group, serial = m.group(1), m.group(3), m.group(4)
    return (
        area != "000"
        and area != "666"
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


def _pnr_ok(m: re.Match[str]) -> bool:
    yy, mm, dd, _sep, serial, check = m.groups()
    if len(yy) == 2 and not _sep and len(m.group(0)) == 10:
        return False  # bare 10 digits are too often other numbers; require a separator
    day = int(dd)
    if day > 60:
        day -= 60  # samordningsnummer
    year = int(yy) if len(yy) == 4 else 2000 + int(yy)
    try:
        date(year, int(mm), day)
    except ValueError:
        return False
    return luhn_ok(yy[-2:] + mm + dd + serial + check)


def _iban_prefix(m: re.Match[str]) -> int | None:
    """End of the longest run of groups from ``m``'s start that is a valid IBAN: a word after
    the number (``... 32 please``) can look like one more group."""
    ends = [g.end() for g in _IBAN_GROUP.finditer(m.string, m.start() + 4, m.end())]
    for end in reversed(ends[2:]):
        if iban_ok(m.string[m.start() : end]):
            return end
    return None


@dataclass(frozen=True)
class PiiMatch:
    kind: str
    start: int
    end: int
    text: str


def _candidates(kind: str, text: str) -> Iterable[PiiMatch]:
    if kind == "email":
        for m in _EMAIL.finditer(text):
            yield PiiMatch(kind, m.start(), m.end(), m.group(0))
    elif kind == "iban":
        for m in _IBAN.finditer(text):
            found = _iban_prefix(m)
            if found is not None:
                yield PiiMatch(kind, m.start(), found, text[m.start() : found])
    elif kind == "card":
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                yield PiiMatch(kind, m.start(), m.end(), m.group(0))
    elif kind == "us_ssn":
        for m in _SSN.finditer(text):
            if _ssn_ok(m):
                yield PiiMatch(kind, m.start(), m.end(), m.group(0))
    elif kind == "uk_nino":
        for m in _NINO.finditer(text):
            yield PiiMatch(kind, m.start(), m.end(), m.group(0))
    elif kind == "se_personnummer":
        for m in _PNR.finditer(text):
            if _pnr_ok(m):
                yield PiiMatch(kind, m.start(), m.end(), m.group(0))
    elif kind == "phone":
        for m in _PHONE.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if 8 <= len(digits) <= 15:
                yield PiiMatch(kind, m.start(), m.end(), m.group(0))


class PiiMasker:
    """``find`` and ``mask`` the configured kinds; unknown kinds are a configuration error."""

    def __init__(self, kinds: Iterable[str] = ALL_KINDS) -> None:
        wanted = set(kinds)
        unknown = wanted - set(ALL_KINDS)
        if unknown:
            raise ConfigError(f"unknown PII kind(s) {sorted(unknown)}; known: {list(ALL_KINDS)}")
        self.kinds = tuple(k for k in ALL_KINDS if k in wanted)

    def find(self, text: str) -> list[PiiMatch]:
        taken: list[PiiMatch] = []
        for kind in self.kinds:
            for cand in _candidates(kind, text):
                if all(cand.end <= t.start or cand.start >= t.end for t in taken):
                    taken.append(cand)
        return sorted(taken, key=lambda m: m.start)

    def mask(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        for m in self.find(text):
            out.append(text[pos : m.start])
            out.append(_LABELS[m.kind])
            pos = m.end
        out.append(text[pos:])
        return "".join(out)

    def kinds_in(self, text: str) -> list[str]:
        return sorted({m.kind for m in self.find(text)})
