"""Windows security descriptors (NTFS / SMB ACLs): parse the self-relative binary form and
decide who may read a file.

A file share answers SMB2 QUERY_INFO(SECURITY) with a self-relative ``SECURITY_DESCRIPTOR``
(MS-DTYP 2.4.6): owner and group SIDs and a DACL of access control entries. Inherited entries
arrive on the file itself, flagged ``INHERITED_ACE``, so the file's own DACL is the whole
answer (no walk up the tree). Layout, little endian except the SID authority::

    SD   rev u8 | sbz1 u8 | control u16 | off_owner u32 | off_group u32 | off_sacl u32 |
         off_dacl u32 | ...
    ACL  rev u8 | sbz1 u8 | size u16 | count u16 | sbz2 u16 | ACEs
    ACE  type u8 | flags u8 | size u16 | mask u32 | [object flags + GUIDs] | SID | [data]
    SID  rev u8 | n u8 | authority 6 bytes big endian | n x u32

:func:`evaluate` turns a DACL into :class:`NtReaders` (allowed and denied SIDs) with one
:class:`AceVerdict` per entry, so ``policies check-access`` can say which entry decided. The
rules (docs/ingest.md, "NT ACLs -> readers"):

- an entry counts when its mask, after generic mapping, includes ``FILE_READ_DATA``; an entry
  that grants only traverse, attributes or ``READ_CONTROL`` is no reader;
- ``INHERIT_ONLY`` entries do not apply to the object itself (CREATOR OWNER templates);
- deny entries always win (any denied SID in a user's token hides the file), even where
  Windows' ordered walk would let an explicit allow placed before an inherited deny through:
  the set form can never grant more than Windows would;
- conditional (callback) allows cannot be evaluated offline and are ignored; conditional denies
  count as denies; object allows (a GUID-scoped right, meaningless for files) are ignored,
  object denies count;
- ``OWNER RIGHTS`` entries apply to the owner SID;
- a NULL DACL grants Everyone (that is what the file server does); an empty DACL grants nobody;
- an entry type this module does not know makes the whole descriptor unevaluable:
  :class:`UnevaluableAcl`, and the sync then indexes the file for nobody and reports why.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

# Access mask bits (MS-DTYP 2.4.3; file-specific rights from MS-SMB2 2.2.13.1).
FILE_READ_DATA = 0x00000001  # FILE_LIST_DIRECTORY on a directory
FILE_WRITE_DATA = 0x00000002
FILE_APPEND_DATA = 0x00000004
FILE_READ_EA = 0x00000008
FILE_WRITE_EA = 0x00000010
FILE_EXECUTE = 0x00000020  # FILE_TRAVERSE on a directory
FILE_DELETE_CHILD = 0x00000040
FILE_READ_ATTRIBUTES = 0x00000080
FILE_WRITE_ATTRIBUTES = 0x00000100
DELETE = 0x00010000
READ_CONTROL = 0x00020000
WRITE_DAC = 0x00040000
WRITE_OWNER = 0x00080000
SYNCHRONIZE = 0x00100000
GENERIC_ALL = 0x10000000
GENERIC_EXECUTE = 0x20000000
GENERIC_WRITE = 0x40000000
GENERIC_READ = 0x80000000

FILE_ALL_ACCESS = 0x001F01FF
FILE_GENERIC_READ = 0x00120089
FILE_GENERIC_WRITE = 0x00120116
FILE_GENERIC_EXECUTE = 0x001200A0
READ_AND_EXECUTE = 0x001200A9  # Explorer's "Read & execute"
MODIFY = 0x001301BF

_GENERIC_MAP = (
    (GENERIC_READ, FILE_GENERIC_READ),
    (GENERIC_WRITE, FILE_GENERIC_WRITE),
    (GENERIC_EXECUTE, FILE_GENERIC_EXECUTE),
    (GENERIC_ALL, FILE_ALL_ACCESS),
)

# ACE types (MS-DTYP 2.4.4.1).
ACCESS_ALLOWED = 0x00
ACCESS_DENIED = 0x01
SYSTEM_AUDIT = 0x02
SYSTEM_ALARM = 0x03
ACCESS_ALLOWED_OBJECT = 0x05
ACCESS_DENIED_OBJECT = 0x06
SYSTEM_AUDIT_OBJECT = 0x07
SYSTEM_ALARM_OBJECT = 0x08
ACCESS_ALLOWED_CALLBACK = 0x09
ACCESS_DENIED_CALLBACK = 0x0A
ACCESS_ALLOWED_CALLBACK_OBJECT = 0x0B
ACCESS_DENIED_CALLBACK_OBJECT = 0x0C
SYSTEM_AUDIT_CALLBACK = 0x0D
SYSTEM_ALARM_CALLBACK = 0x0E
SYSTEM_AUDIT_CALLBACK_OBJECT = 0x0F
SYSTEM_ALARM_CALLBACK_OBJECT = 0x10
SYSTEM_MANDATORY_LABEL = 0x11
SYSTEM_RESOURCE_ATTRIBUTE = 0x12
SYSTEM_SCOPED_POLICY_ID = 0x13

_DENY_TYPES = frozenset(
    {ACCESS_DENIED, ACCESS_DENIED_OBJECT, ACCESS_DENIED_CALLBACK, ACCESS_DENIED_CALLBACK_OBJECT}
)
_ALLOW_TYPES = frozenset(
    {
        ACCESS_ALLOWED,
        ACCESS_ALLOWED_OBJECT,
        ACCESS_ALLOWED_CALLBACK,
        ACCESS_ALLOWED_CALLBACK_OBJECT,
    }
)
_OBJECT_TYPES = frozenset(
    {
        ACCESS_ALLOWED_OBJECT,
        ACCESS_DENIED_OBJECT,
        SYSTEM_AUDIT_OBJECT,
        SYSTEM_ALARM_OBJECT,
        ACCESS_ALLOWED_CALLBACK_OBJECT,
        ACCESS_DENIED_CALLBACK_OBJECT,
        SYSTEM_AUDIT_CALLBACK_OBJECT,
        SYSTEM_ALARM_CALLBACK_OBJECT,
    }
)
_CALLBACK_TYPES = frozenset(
    {
        ACCESS_ALLOWED_CALLBACK,
        ACCESS_DENIED_CALLBACK,
        ACCESS_ALLOWED_CALLBACK_OBJECT,
        ACCESS_DENIED_CALLBACK_OBJECT,
        SYSTEM_AUDIT_CALLBACK,
        SYSTEM_ALARM_CALLBACK,
        SYSTEM_AUDIT_CALLBACK_OBJECT,
        SYSTEM_ALARM_CALLBACK_OBJECT,
    }
)
# Types that say nothing about who may read (audit, alarm, labels, claims); harmless in a DACL.
_NEUTRAL_TYPES = frozenset(
    {
        SYSTEM_AUDIT,
        SYSTEM_ALARM,
        SYSTEM_AUDIT_OBJECT,
        SYSTEM_ALARM_OBJECT,
        SYSTEM_AUDIT_CALLBACK,
        SYSTEM_ALARM_CALLBACK,
        SYSTEM_AUDIT_CALLBACK_OBJECT,
        SYSTEM_ALARM_CALLBACK_OBJECT,
        SYSTEM_MANDATORY_LABEL,
        SYSTEM_RESOURCE_ATTRIBUTE,
        SYSTEM_SCOPED_POLICY_ID,
    }
)
_KNOWN_TYPES = _DENY_TYPES | _ALLOW_TYPES | _NEUTRAL_TYPES

# ACE flags.
OBJECT_INHERIT_ACE = 0x01
CONTAINER_INHERIT_ACE = 0x02
NO_PROPAGATE_INHERIT_ACE = 0x04
INHERIT_ONLY_ACE = 0x08
INHERITED_ACE = 0x10
OICI = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE

# Security descriptor control bits.
SE_DACL_PRESENT = 0x0004
SE_SACL_PRESENT = 0x0010
SE_DACL_AUTO_INHERIT_REQ = 0x0100
SE_DACL_AUTO_INHERITED = 0x0400
SE_DACL_PROTECTED = 0x1000
SE_SELF_RELATIVE = 0x8000

# What a QUERY_INFO / SET_INFO asks for (MS-SMB2 2.2.37).
OWNER_SECURITY_INFORMATION = 0x1
GROUP_SECURITY_INFORMATION = 0x2
DACL_SECURITY_INFORMATION = 0x4

# Well-known SIDs.
EVERYONE = "S-1-1-0"
CREATOR_OWNER = "S-1-3-0"
CREATOR_GROUP = "S-1-3-1"
OWNER_RIGHTS = "S-1-3-4"
NETWORK = "S-1-5-2"
AUTHENTICATED_USERS = "S-1-5-11"
THIS_ORGANIZATION = "S-1-5-15"
LOCAL_SYSTEM = "S-1-5-18"
BUILTIN_ADMINISTRATORS = "S-1-5-32-544"
BUILTIN_USERS = "S-1-5-32-545"
BUILTIN_SERVER_OPERATORS = "S-1-5-32-549"
BUILTIN_BACKUP_OPERATORS = "S-1-5-32-551"
DOMAIN_ADMINS_RID = 512
DOMAIN_USERS_RID = 513
ENTERPRISE_ADMINS_RID = 519

WELL_KNOWN_NAMES = {
    EVERYONE: "Everyone",
    CREATOR_OWNER: "CREATOR OWNER",
    CREATOR_GROUP: "CREATOR GROUP",
    OWNER_RIGHTS: "OWNER RIGHTS",
    NETWORK: "NT AUTHORITY\\NETWORK",
    AUTHENTICATED_USERS: "NT AUTHORITY\\Authenticated Users",
    THIS_ORGANIZATION: "NT AUTHORITY\\This Organization",
    LOCAL_SYSTEM: "NT AUTHORITY\\SYSTEM",
    BUILTIN_ADMINISTRATORS: "BUILTIN\\Administrators",
    BUILTIN_USERS: "BUILTIN\\Users",
    BUILTIN_SERVER_OPERATORS: "BUILTIN\\Server Operators",
    BUILTIN_BACKUP_OPERATORS: "BUILTIN\\Backup Operators",
}

NETWORK_LOGON_SIDS = frozenset({EVERYONE, AUTHENTICATED_USERS, NETWORK, THIS_ORGANIZATION})
"""SIDs the file server adds to every domain user's token on an SMB (network) logon; the
directory's ``tokenGroups`` never lists them, so a principal's token gets them added."""

ADMINISTRATIVE_SIDS = frozenset(
    {LOCAL_SYSTEM, BUILTIN_ADMINISTRATORS, BUILTIN_SERVER_OPERATORS, BUILTIN_BACKUP_OPERATORS}
)
"""Default of ``smb.ignored_reader_sids``: SIDs that hold access to manage files, not to read
them (see docs/ingest.md); they are dropped from a file's readers (never from its denies)."""

ADMINISTRATIVE_RIDS = frozenset({DOMAIN_ADMINS_RID, ENTERPRISE_ADMINS_RID})
"""Domain-relative RIDs dropped from readers by default (``smb.ignored_reader_rids``)."""


class UnevaluableAcl(ValueError):
    """A descriptor that cannot be decided offline (malformed, or an unknown entry type)."""


# -- SIDs ---------------------------------------------------------------------------------------


def sid_from_bytes(data: bytes, offset: int = 0) -> tuple[str, int]:
    """Decode the binary SID at ``offset``: ``(string form, length in bytes)``."""
    if len(data) < offset + 8:
        raise UnevaluableAcl("truncated SID")
    rev, n_sub = data[offset], data[offset + 1]
    if rev != 1 or n_sub > 15:
        raise UnevaluableAcl(f"malformed SID (revision {rev}, {n_sub} sub-authorities)")
    end = offset + 8 + 4 * n_sub
    if len(data) < end:
        raise UnevaluableAcl("truncated SID sub-authorities")
    authority = int.from_bytes(data[offset + 2 : offset + 8], "big")
    subs = struct.unpack_from(f"<{n_sub}I", data, offset + 8)
    auth = str(authority) if authority < 2**32 else f"0x{authority:012X}"
    return "S-1-" + auth + "".join(f"-{s}" for s in subs), end - offset


def sid_to_bytes(sid: str) -> bytes:
    """The binary form of ``S-1-...`` (what LDAP stores in ``objectSid``)."""
    parts = sid.split("-")
    if len(parts) < 3 or parts[0].upper() != "S" or parts[1] != "1":
        raise ValueError(f"not a SID: {sid!r}")
    authority = int(parts[2], 0)
    subs = [int(p) for p in parts[3:]]
    if len(subs) > 15:
        raise ValueError(f"a SID has at most 15 sub-authorities: {sid!r}")
    return (
        bytes([1, len(subs)]) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)
    )


def is_sid(value: str) -> bool:
    parts = value.split("-")
    return (
        len(parts) >= 3
        and parts[0] == "S"
        and parts[1] == "1"
        and all(p.isdigit() for p in parts[2:])
    )


def domain_of(sid: str) -> str | None:
    """``S-1-5-21-a-b-c-1105`` -> ``S-1-5-21-a-b-c``; None for a SID outside a domain."""
    parts = sid.split("-")
    if len(parts) == 8 and parts[2] == "5" and parts[3] == "21":
        return "-".join(parts[:7])
    return None


def rid_of(sid: str) -> int | None:
    return int(sid.rsplit("-", 1)[1]) if domain_of(sid) else None


# -- model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ace:
    type: int
    flags: int
    mask: int
    sid: str
    object_type: bytes | None = None

    @property
    def is_allow(self) -> bool:
        return self.type in _ALLOW_TYPES

    @property
    def is_deny(self) -> bool:
        return self.type in _DENY_TYPES

    @property
    def inherited(self) -> bool:
        return bool(self.flags & INHERITED_ACE)

    @property
    def inherit_only(self) -> bool:
        return bool(self.flags & INHERIT_ONLY_ACE)

    def flag_names(self) -> str:
        names = [
            n
            for bit, n in (
                (OBJECT_INHERIT_ACE, "OI"),
                (CONTAINER_INHERIT_ACE, "CI"),
                (NO_PROPAGATE_INHERIT_ACE, "NP"),
                (INHERIT_ONLY_ACE, "IO"),
                (INHERITED_ACE, "ID"),
            )
            if self.flags & bit
        ]
        return "|".join(names) or "-"

    @property
    def kind(self) -> str:
        if self.is_allow:
            return "allow"
        if self.is_deny:
            return "deny"
        return f"type 0x{self.type:02x}"


@dataclass(frozen=True)
class SecurityDescriptor:
    control: int
    owner: str | None
    group: str | None
    dacl: tuple[Ace, ...] | None  # None: NULL DACL (no protection)

    @property
    def protected(self) -> bool:
        return bool(self.control & SE_DACL_PROTECTED)

    @property
    def auto_inherited(self) -> bool:
        return bool(self.control & SE_DACL_AUTO_INHERITED)


def _parse_acl(data: bytes, off: int) -> tuple[Ace, ...]:
    if len(data) < off + 8:
        raise UnevaluableAcl("truncated ACL header")
    _rev, _sbz1, size, count, _sbz2 = struct.unpack_from("<BBHHH", data, off)
    end = off + size
    if end > len(data):
        raise UnevaluableAcl("ACL larger than the descriptor")
    pos = off + 8
    aces: list[Ace] = []
    for _ in range(count):
        if pos + 8 > end:
            raise UnevaluableAcl("truncated ACE")
        a_type, a_flags, a_size = struct.unpack_from("<BBH", data, pos)
        if a_size < 8 or pos + a_size > end:
            raise UnevaluableAcl(f"ACE at offset {pos} has a bad size {a_size}")
        if a_type not in _KNOWN_TYPES:
            raise UnevaluableAcl(f"ACE type 0x{a_type:02x} is not one Enclave can evaluate")
        body = data[pos + 4 : pos + a_size]
        (mask,) = struct.unpack_from("<I", body, 0)
        bpos = 4
        obj: bytes | None = None
        if a_type in _OBJECT_TYPES:
            if len(body) < 8:
                raise UnevaluableAcl("truncated object ACE")
            (oflags,) = struct.unpack_from("<I", body, bpos)
            bpos += 4
            if oflags & 0x1:
                obj = bytes(body[bpos : bpos + 16])
                bpos += 16
            if oflags & 0x2:
                bpos += 16
        sid, _n = sid_from_bytes(body, bpos)
        aces.append(Ace(a_type, a_flags, mask, sid, obj))
        pos += a_size
    return tuple(aces)


def parse_sd(data: bytes) -> SecurityDescriptor:
    """Parse a self-relative descriptor; :class:`UnevaluableAcl` if it is malformed."""
    if len(data) < 20:
        raise UnevaluableAcl("security descriptor shorter than its header")
    rev, _sbz1, control, o_owner, o_group, _o_sacl, o_dacl = struct.unpack_from("<BBHIIII", data, 0)
    if rev != 1:
        raise UnevaluableAcl(f"security descriptor revision {rev}")
    owner = sid_from_bytes(data, o_owner)[0] if o_owner else None
    group = sid_from_bytes(data, o_group)[0] if o_group else None
    dacl = _parse_acl(data, o_dacl) if control & SE_DACL_PRESENT and o_dacl else None
    return SecurityDescriptor(control, owner, group, dacl)


def build_sd(
    owner: str | None,
    group: str | None,
    dacl: Iterable[Ace] | None,
    *,
    protected: bool = False,
    auto_inherited: bool = True,
) -> bytes:
    """A self-relative descriptor of basic allow/deny entries (what a client sends with
    SET_INFO). ``auto_inherited`` sets DI|DR as Windows clients do, so the server keeps marking
    inherited entries ``INHERITED_ACE`` on children (Samba drops the flag without it)."""
    control = SE_SELF_RELATIVE
    parts = b""
    off = 20
    o_owner = o_group = o_dacl = 0
    for sid, slot in ((owner, "owner"), (group, "group")):
        if sid:
            raw = sid_to_bytes(sid)
            if slot == "owner":
                o_owner = off
            else:
                o_group = off
            parts += raw
            off += len(raw)
    if dacl is not None:
        control |= SE_DACL_PRESENT
        if auto_inherited:
            control |= SE_DACL_AUTO_INHERITED | SE_DACL_AUTO_INHERIT_REQ
        if protected:
            control |= SE_DACL_PROTECTED
        body = b""
        count = 0
        for ace in dacl:
            if ace.type not in (ACCESS_ALLOWED, ACCESS_DENIED):
                raise ValueError("build_sd writes basic allow/deny entries only")
            sid_raw = sid_to_bytes(ace.sid)
            body += struct.pack("<BBHI", ace.type, ace.flags, 8 + len(sid_raw), ace.mask) + sid_raw
            count += 1
        o_dacl = off
        parts += struct.pack("<BBHHH", 2, 0, 8 + len(body), count, 0) + body
    return struct.pack("<BBHIIII", 1, 0, control, o_owner, o_group, 0, o_dacl) + parts


def allow(sid: str, mask: int = READ_AND_EXECUTE, flags: int = 0) -> Ace:
    return Ace(ACCESS_ALLOWED, flags, mask, sid)


def deny(sid: str, mask: int = READ_AND_EXECUTE, flags: int = 0) -> Ace:
    return Ace(ACCESS_DENIED, flags, mask, sid)


# -- readers ------------------------------------------------------------------------------------


def map_generic(mask: int) -> int:
    for generic, specific in _GENERIC_MAP:
        if mask & generic:
            mask = (mask & ~generic) | specific
    return mask


def grants_read(mask: int) -> bool:
    """True when the mask includes FILE_READ_DATA once generic rights are mapped."""
    return bool(map_generic(mask) & FILE_READ_DATA)


# AceVerdict.effect values
ALLOWS = "allows"
DENIES = "denies"
IGNORED = "ignored"


@dataclass(frozen=True)
class AceVerdict:
    """What one entry contributes, and why (for ``policies check-access``)."""

    index: int
    ace: Ace
    sid: str  # the SID it applies to (OWNER RIGHTS resolved to the owner)
    effect: str  # ALLOWS, DENIES or IGNORED
    why: str


@dataclass(frozen=True)
class NtReaders:
    allowed: frozenset[str]
    denied: frozenset[str]
    verdicts: tuple[AceVerdict, ...] = field(default=(), compare=False)
    note: str = field(default="", compare=False)


def evaluate(
    sd: SecurityDescriptor,
    *,
    ignored_sids: frozenset[str] = frozenset(),
    ignored_rids: frozenset[int] = frozenset(),
) -> NtReaders:
    """Who may read the object: see the module docstring for every rule. ``ignored_sids`` and
    domain SIDs ending in one of ``ignored_rids`` (administrative accounts) are never readers;
    a deny naming them still counts."""
    if sd.dacl is None:
        return NtReaders(
            frozenset({EVERYONE}), frozenset(), (), "NULL DACL: no protection, Everyone"
        )
    allowed: set[str] = set()
    denied: set[str] = set()
    verdicts: list[AceVerdict] = []
    for i, ace in enumerate(sd.dacl, start=1):
        sid = sd.owner if ace.sid == OWNER_RIGHTS and sd.owner else ace.sid
        effect, why = IGNORED, ""
        if not ace.is_allow and not ace.is_deny:
            why = "audit/label entry, not an access decision"
        elif ace.inherit_only:
            why = "inherit-only: applies to children, not to this object"
        elif not grants_read(ace.mask):
            why = "does not cover reading the content (FILE_READ_DATA)"
        elif ace.is_deny:
            effect, why = (
                DENIES,
                "denies read" + (" (conditional: counted)" if ace.type in _CALLBACK_TYPES else ""),
            )
            denied.add(sid)
        elif ace.type in _CALLBACK_TYPES:
            why = "conditional allow: cannot be evaluated offline, not counted"
        elif ace.type == ACCESS_ALLOWED_OBJECT and ace.object_type is not None:
            why = "object-scoped allow: not a file read right, not counted"
        elif sid in ignored_sids or rid_of(sid) in ignored_rids:
            why = "administrative SID: not a reader in Enclave (smb.ignored_reader_sids/_rids)"
        else:
            effect, why = ALLOWS, "grants read"
            allowed.add(sid)
        verdicts.append(AceVerdict(i, ace, sid, effect, why))
    note = "" if sd.dacl else "empty DACL: nobody"
    return NtReaders(frozenset(allowed), frozenset(denied), tuple(verdicts), note)


def ordered_access(
    sd: SecurityDescriptor, token: Iterable[str], desired: int = FILE_READ_DATA
) -> bool:
    """Windows' ordered DACL walk (MS-DTYP 2.5.3.2, without privileges): the first entry that
    denies a still-wanted bit ends it. ``policies check-access`` shows it beside Enclave's
    deny-wins decision when the two differ."""
    if sd.dacl is None:
        return True
    tok = set(token)
    remaining = map_generic(desired)
    for ace in sd.dacl:
        if not remaining:
            break
        sid = sd.owner if ace.sid == OWNER_RIGHTS and sd.owner else ace.sid
        if ace.inherit_only or sid not in tok:
            continue
        mask = map_generic(ace.mask)
        if ace.is_deny and mask & remaining:
            return False
        if ace.is_allow and ace.type not in _CALLBACK_TYPES:
            remaining &= ~mask
    return remaining == 0
