"""NT security descriptors -> readers: the rules of policies.ntacl, on descriptors built here
(the same code path reads what a real share returns; tests/smb runs it against Samba)."""

from __future__ import annotations

import struct

import pytest

from policies import ntacl as N

DOM = "S-1-5-21-1004336348-1177238915-682003330"
ALICE, BOB, HR, ENG = f"{DOM}-1103", f"{DOM}-1104", f"{DOM}-1107", f"{DOM}-1108"


def sd(aces: list[N.Ace] | None, owner: str = N.BUILTIN_ADMINISTRATORS) -> N.SecurityDescriptor:
    return N.parse_sd(N.build_sd(owner, f"{DOM}-513", aces))


def raw_ace(
    ace_type: int, flags: int, mask: int, sid: str, tail: bytes = b"", obj: bytes = b""
) -> bytes:
    body = struct.pack("<I", mask) + obj + N.sid_to_bytes(sid) + tail
    return struct.pack("<BBH", ace_type, flags, 4 + len(body)) + body


def sd_with_raw_aces(aces: list[bytes]) -> N.SecurityDescriptor:
    body = b"".join(aces)
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(body), len(aces), 0) + body
    header = struct.pack("<BBHIIII", 1, 0, N.SE_SELF_RELATIVE | N.SE_DACL_PRESENT, 0, 0, 0, 20)
    return N.parse_sd(header + acl)


def test_sid_round_trip_and_helpers() -> None:
    for sid in (N.EVERYONE, N.BUILTIN_USERS, ALICE):
        assert N.sid_from_bytes(N.sid_to_bytes(sid))[0] == sid
    assert N.domain_of(ALICE) == DOM and N.rid_of(ALICE) == 1103
    assert N.domain_of(N.EVERYONE) is None and N.rid_of(N.BUILTIN_USERS) is None
    assert N.is_sid(ALICE) and not N.is_sid("hr") and not N.is_sid("S-1-x")


def test_build_and_parse_round_trip() -> None:
    d = sd([N.allow(ALICE, N.FILE_ALL_ACCESS), N.deny(HR, N.GENERIC_READ, N.INHERITED_ACE)])
    assert d.owner == N.BUILTIN_ADMINISTRATORS and d.group == f"{DOM}-513"
    assert d.auto_inherited and not d.protected
    assert [(a.kind, a.sid, a.inherited) for a in d.dacl or ()] == [
        ("allow", ALICE, False),
        ("deny", HR, True),
    ]


def test_readers_rules() -> None:
    d = sd(
        [
            N.allow(ALICE, N.READ_AND_EXECUTE),
            N.allow(ENG, N.GENERIC_READ | N.GENERIC_EXECUTE, N.INHERITED_ACE),  # generic mapped
            N.allow(N.CREATOR_OWNER, N.FILE_ALL_ACCESS, N.OICI | N.INHERIT_ONLY_ACE),  # template
            N.allow(BOB, N.FILE_READ_ATTRIBUTES | N.READ_CONTROL | N.FILE_EXECUTE),  # no content
            N.allow(N.BUILTIN_ADMINISTRATORS, N.FILE_ALL_ACCESS),
            N.allow(f"{DOM}-512", N.FILE_ALL_ACCESS),  # Domain Admins
            N.deny(HR, N.FILE_READ_DATA),
            N.deny(N.EVERYONE, N.FILE_WRITE_DATA),  # a write deny does not hide the file
        ]
    )
    r = N.evaluate(d, ignored_sids=N.ADMINISTRATIVE_SIDS, ignored_rids=N.ADMINISTRATIVE_RIDS)
    assert r.allowed == {ALICE, ENG}
    assert r.denied == {HR}
    effects = [(v.index, v.effect) for v in r.verdicts]
    assert effects == [
        (1, N.ALLOWS),
        (2, N.ALLOWS),
        (3, N.IGNORED),
        (4, N.IGNORED),
        (5, N.IGNORED),
        (6, N.IGNORED),
        (7, N.DENIES),
        (8, N.IGNORED),
    ]
    assert "inherit-only" in r.verdicts[2].why and "administrative" in r.verdicts[4].why


def test_null_and_empty_dacl() -> None:
    assert N.evaluate(sd(None)).allowed == {N.EVERYONE}
    empty = N.evaluate(sd([]))
    assert empty.allowed == set() and "nobody" in empty.note


def test_owner_rights_apply_to_the_owner() -> None:
    r = N.evaluate(sd([N.allow(N.OWNER_RIGHTS, N.FILE_GENERIC_READ)], owner=ALICE))
    assert r.allowed == {ALICE}


def test_conditional_allow_is_ignored_and_conditional_deny_counts() -> None:
    cond = b"artx" + b"\x00" * 4  # a conditional expression Enclave does not evaluate
    d = sd_with_raw_aces(
        [
            raw_ace(N.ACCESS_ALLOWED_CALLBACK, 0, N.FILE_GENERIC_READ, ALICE, cond),
            raw_ace(N.ACCESS_DENIED_CALLBACK, 0, N.FILE_GENERIC_READ, BOB, cond),
            raw_ace(N.ACCESS_ALLOWED, 0, N.FILE_GENERIC_READ, BOB),
        ]
    )
    r = N.evaluate(d)
    assert r.allowed == {BOB} and r.denied == {BOB}
    assert "conditional" in r.verdicts[0].why


def test_object_aces() -> None:
    guid = bytes(range(16))
    d = sd_with_raw_aces(
        [
            raw_ace(
                N.ACCESS_ALLOWED_OBJECT,
                0,
                N.FILE_GENERIC_READ,
                ALICE,
                obj=struct.pack("<I", 1) + guid,
            ),
            raw_ace(
                N.ACCESS_DENIED_OBJECT, 0, N.FILE_GENERIC_READ, HR, obj=struct.pack("<I", 1) + guid
            ),
        ]
    )
    r = N.evaluate(d)
    assert r.allowed == set() and r.denied == {HR}


@pytest.mark.parametrize("ace_type", [0x04, 0x14, 0x7F])
def test_unknown_ace_type_cannot_be_evaluated(ace_type: int) -> None:
    with pytest.raises(N.UnevaluableAcl, match="not one Enclave can evaluate"):
        sd_with_raw_aces([raw_ace(ace_type, 0, N.FILE_GENERIC_READ, ALICE)])


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x01\x00" * 5, N.build_sd(None, None, [N.allow(ALICE)])[:-3], b"\x02" + b"\x00" * 19],
)
def test_malformed_descriptors_cannot_be_evaluated(blob: bytes) -> None:
    with pytest.raises(N.UnevaluableAcl):
        N.parse_sd(blob)


def test_deny_wins_where_windows_order_would_allow() -> None:
    """An explicit allow before an inherited deny: Windows' ordered walk lets alice (in hr)
    read; Enclave's set form hides the file from her. The only way the two differ, and it
    never grants more than Windows."""
    d = sd([N.allow(ALICE, N.FILE_ALL_ACCESS), N.deny(HR, N.GENERIC_READ, N.INHERITED_ACE)])
    r = N.evaluate(d)
    token = {ALICE, HR, N.EVERYONE}
    assert N.ordered_access(d, token) is True
    assert bool(r.allowed & token) and bool(r.denied & token)  # deny wins: not readable
    assert N.ordered_access(d, {HR}) is False
    # with the deny first both agree
    d2 = sd([N.deny(HR, N.GENERIC_READ), N.allow(ALICE, N.FILE_ALL_ACCESS)])
    assert N.ordered_access(d2, token) is False
