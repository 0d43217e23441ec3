"""PII detection and masking: checksums decide, look-alikes stay."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from policies.pii import PiiMasker, iban_ok, luhn_ok

MASKER = PiiMasker()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+hr@mail.example.co.uk please", "email"),
        ("IBAN GB82 WEST 1234 5698 7654 32.", "iban"),
        ("DE89370400440532013000", "iban"),
        ("card 4111 1111 1111 1111 exp 12/29", "card"),
        ("card 5500-0000-0000-0004", "card"),
        ("SSN 123-45-6789", "us_ssn"),
        ("NI number AB 12 34 56 C", "uk_nino"),
        ("personnummer 121212-1212", "se_personnummer"),
        ("personnummer 19121212-1212", "se_personnummer"),
        ("samordningsnummer 701063-2391", "se_personnummer"),
        ("call +46 70 123 45 67", "phone"),
        ("call +1 (415) 555-0123", "phone"),
        ("call 020 7946 0958", "phone"),
        ("call (555) 123-4567", "phone"),
    ],
)
def test_detects(text: str, kind: str) -> None:
    assert MASKER.kinds_in(text) == [kind]
    masked = MASKER.mask(text)
    assert masked != text and "[" in masked


@pytest.mark.parametrize(
    "text",
    [
        "IBAN GB82 WEST 1234 5698 7654 33",  # mod-97 fails
        "card 4111 1111 1111 1112",  # Luhn fails
        "SSN 666-45-6789",  # never issued
        "SSN 123-00-4567",  # group 00 never issued
        "NI QQ 12 34 56 C",  # Q is not a valid prefix letter
        "personnummer 121212-1213",  # wrong check digit
        "personnummer 991332-1234",  # no 32nd day
        "date 2024-01-15, version 1.2.3, amount 1,234,567.89",
        "invoice INV-2024-0001, ticket 12345678, order 2024/118",
        "an email-like thing: user@localhost",
    ],
)
def test_ignores_lookalikes(text: str) -> None:
    assert MASKER.find(text) == []
    assert MASKER.mask(text) == text


def test_mask_keeps_surrounding_text() -> None:
    text = "Mail a@b.se or call +44 20 7946 0958; pay to DE89 3704 0044 0532 0130 00."
    assert MASKER.mask(text) == "Mail [EMAIL] or call [PHONE]; pay to [IBAN]."


def test_card_is_not_also_a_phone() -> None:
    found = MASKER.find("4111-1111-1111-1111")
    assert [m.kind for m in found] == ["card"]


def test_kinds_are_configurable() -> None:
    only_email = PiiMasker(["email"])
    assert only_email.mask("a@b.se 123-45-6789") == "[EMAIL] 123-45-6789"
    with pytest.raises(ConfigError, match="passport"):
        PiiMasker(["passport"])


def test_checksums() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")


# Issue 14, item 13: more formats, masked whole --------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("ring 0701234567 i morgon", "ring [PHONE] i morgon"),
        ("call 555.123.4567 today", "call [PHONE] today"),
        ("SSN 123 45 6789 on file", "SSN [NATIONAL_ID] on file"),
        ("card 4111.1111.1111.1111 exp 12/29", "card [CARD] exp 12/29"),
        ("iban gb82 west 1234 5698 7654 32 please", "iban [IBAN] please"),
        ("IBAN de89370400440532013000.", "IBAN [IBAN]."),
        ("pay DE89-3704-0044-0532-0130-00 now", "pay [IBAN] now"),
        ("pay GB82-WEST-1234-5698-7654-32 now", "pay [IBAN] now"),
        ("mail jörg.müller@bücher.de now", "mail [EMAIL] now"),
        ("mail 用户@例子.广告 now", "mail [EMAIL] now"),
        ("mail δοκιμή@παράδειγμα.δοκιμή now", "mail [EMAIL] now"),
        ("mail anna.ström@företag.se, thanks", "mail [EMAIL], thanks"),
    ],
)
def test_more_formats_are_masked_whole(text: str, masked: str) -> None:
    assert MASKER.mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "ticket 12345678 and order 2024/118",
        "version 10.2.3 released on 2024.01.15",
        "server 192.168.100.200 and 10.0.12.7",
        "ISO 9001:2015 and ISO 27001",
        "meet at 12:30 in room 0.12",
        "amount 1.234.567,89 EUR",
        "part 555.12.4567 in the catalogue",
        "SKU 0000000000 is a placeholder",
        "card 4111.1111.1111.1112 (Luhn fails)",
        "iban gb82 west 1234 5698 7654 33 (mod-97 fails)",
        "SSN 666 45 6789 was never issued",
        "write to user@localhost",
        "tel. ext 4567",
    ],
)
def test_new_formats_leave_lookalikes_alone(text: str) -> None:
    assert MASKER.find(text) == [], MASKER.find(text)
