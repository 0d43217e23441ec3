"""POSIX permissions of local and NFS/CIFS-mounted files: mode bits plus POSIX.1e ACLs
(``system.posix_acl_access``), and how they narrow the groups the access rules grant.

Kernel xattr format (``include/uapi/linux/posix_acl_xattr.h``), little endian: ``u32 version
(2)`` then entries of ``u16 tag | u16 perm | u32 id``. A file without the xattr has the
"minimal ACL" of its mode bits (owner, owning group, other).

Local user and group ids do not name directory principals reliably, so on a local tree the
access rules say which groups may read (``policies.access``) and the file's permissions can
only *narrow* that (fail closed; docs/ingest.md, "POSIX permissions"). POSIX evaluates one
user like this: owner entry, else a named-user entry, else any matching group entry (owning or
named group; granted if any of them grants), else ``other``; the mask caps named entries and
the owning group. :func:`narrow` maps that onto the index's allowed/denied sets:

- a rule group keeps read access if it has a group entry that grants read (after the mask),
  or, without an entry of its own, if ``other`` may read;
- denied: the owner when the owner entry lacks read, every named user whose entry lacks read
  (both exact: POSIX never falls through for them), and, when ``other`` may read, every group
  whose entries lack read (its members do not fall through to ``other``). The last one is
  conservative: a member of such a group who is also in a granting group is hidden although
  POSIX would let them read. Never the other way round.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from policies.identity import USER_PREFIX

ACL_XATTR = "system.posix_acl_access"
XATTR_VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
TAG_NAMES = {
    USER_OBJ: "owner",
    USER: "user",
    GROUP_OBJ: "owning group",
    GROUP: "group",
    MASK: "mask",
    OTHER: "other",
}
R, W, X = 4, 2, 1
_NO_ID = 0xFFFFFFFF


def user_marker(name: str) -> str:
    """Principal id of a user (not a group) in the index: ``user:<name>``."""
    return USER_PREFIX + name


@dataclass(frozen=True)
class AclEntry:
    tag: int
    perm: int
    id: int | None  # uid/gid of USER/GROUP entries

    def perms(self) -> str:
        return "".join(c if self.perm & b else "-" for c, b in (("r", R), ("w", W), ("x", X)))


@dataclass(frozen=True)
class PosixAcl:
    mode: int
    uid: int
    gid: int
    entries: tuple[AclEntry, ...]
    has_xattr: bool

    @property
    def mask(self) -> int | None:
        for e in self.entries:
            if e.tag == MASK:
                return e.perm
        return None

    def to_bytes(self) -> bytes:
        """Storage form (for ``policies check-access``): mode, uid, gid, then the xattr."""
        head = struct.pack("<III", self.mode, self.uid, self.gid)
        return head + (build_acl_xattr(self.entries) if self.has_xattr else b"")

    @classmethod
    def from_bytes(cls, data: bytes) -> PosixAcl:
        mode, uid, gid = struct.unpack_from("<III", data, 0)
        rest = data[12:]
        if rest:
            return cls(mode, uid, gid, parse_acl_xattr(rest), True)
        return cls(mode, uid, gid, minimal_acl(mode), False)


def parse_acl_xattr(data: bytes) -> tuple[AclEntry, ...]:
    if len(data) < 4 or (len(data) - 4) % 8:
        raise ValueError(f"malformed POSIX ACL xattr ({len(data)} bytes)")
    (version,) = struct.unpack_from("<I", data, 0)
    if version != XATTR_VERSION:
        raise ValueError(f"POSIX ACL xattr version {version} (expected {XATTR_VERSION})")
    out = []
    for off in range(4, len(data), 8):
        tag, perm, eid = struct.unpack_from("<HHI", data, off)
        out.append(AclEntry(tag, perm, eid if tag in (USER, GROUP) else None))
    return tuple(out)


def build_acl_xattr(entries: Iterable[AclEntry]) -> bytes:
    buf = struct.pack("<I", XATTR_VERSION)
    for e in sorted(entries, key=lambda e: (e.tag, e.id or 0)):
        buf += struct.pack("<HHI", e.tag, e.perm, _NO_ID if e.id is None else e.id)
    return buf


def minimal_acl(mode: int) -> tuple[AclEntry, ...]:
    return (
        AclEntry(USER_OBJ, (mode >> 6) & 7, None),
        AclEntry(GROUP_OBJ, (mode >> 3) & 7, None),
        AclEntry(OTHER, mode & 7, None),
    )


def read_acl(path: Path | str, *, mode: int, uid: int, gid: int) -> PosixAcl:
    """The file's ACL (its mode bits when it has no ACL xattr or the filesystem has none)."""
    try:
        raw = os.getxattr(path, ACL_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        return PosixAcl(mode, uid, gid, minimal_acl(mode), False)
    return PosixAcl(mode, uid, gid, parse_acl_xattr(raw), True)


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    """Name of a group id (its number as text when the system does not know it)."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@dataclass(frozen=True)
class PosixDecision:
    allowed: tuple[str, ...]  # rule groups that keep read access
    denied: tuple[str, ...]  # group names and user:<name> markers
    reasons: tuple[str, ...]


def narrow(
    acl: PosixAcl,
    groups: Iterable[str],
    *,
    gname: Callable[[int], str] = group_name,
    uname: Callable[[int], str] = user_name,
) -> PosixDecision:
    """Apply the file's POSIX permissions to the rule ``groups`` (module docstring)."""
    mask = acl.mask

    def effective(e: AclEntry) -> int:
        capped = e.tag in (USER, GROUP) or (e.tag == GROUP_OBJ and mask is not None)
        return e.perm & mask if capped and mask is not None else e.perm

    other_r = any(e.tag == OTHER and e.perm & R for e in acl.entries)
    by_group: dict[str, list[AclEntry]] = {}
    for e in acl.entries:
        if e.tag == GROUP_OBJ:
            by_group.setdefault(gname(acl.gid), []).append(e)
        elif e.tag == GROUP and e.id is not None:
            by_group.setdefault(gname(e.id), []).append(e)
    reasons: list[str] = []
    allowed: list[str] = []
    for g in sorted(set(groups)):
        own = by_group.get(g)
        if own:
            ok = any(effective(e) & R for e in own)
            what = ", ".join(f"{TAG_NAMES[e.tag]} entry {effective(e):o}" for e in own)
            reasons.append(f"group {g}: {what} -> {'keeps' if ok else 'loses'} read")
        else:
            ok = other_r
            reasons.append(
                f"group {g}: no entry of its own, other {'may' if ok else 'may not'} read"
            )
        if ok:
            allowed.append(g)
    denied: list[str] = []
    for e in acl.entries:
        if e.tag == USER_OBJ and not e.perm & R:
            denied.append(user_marker(uname(acl.uid)))
            reasons.append(f"owner {uname(acl.uid)} may not read: denied")
        elif e.tag == USER and e.id is not None and not effective(e) & R:
            denied.append(user_marker(uname(e.id)))
            reasons.append(f"named user {uname(e.id)} may not read (after mask): denied")
    if other_r:
        for g, own in sorted(by_group.items()):
            if not any(effective(e) & R for e in own):
                denied.append(g)
                reasons.append(f"group {g} may not read while other may: its members denied")
    return PosixDecision(tuple(allowed), tuple(sorted(set(denied))), tuple(reasons))
