"""POSIX ACLs (setfacl) -> how they narrow the rule groups, checked against the kernel: a child
process with the user's uid and groups tries to open the file."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from policies.posixacl import (
    USER,
    AclEntry,
    PosixAcl,
    build_acl_xattr,
    narrow,
    parse_acl_xattr,
    read_acl,
)

if os.geteuid() != 0 or shutil.which("setfacl") is None:
    if os.environ.get("CI"):
        pytest.fail("POSIX ACL tests need root and setfacl (Debian acl) in CI", pytrace=False)
    pytestmark = pytest.mark.skip(reason="needs root and setfacl")

NAMES_G = {50001: "owners", 50002: "readers", 50003: "writers", 50004: "others"}
NAMES_U = {40001: "olga", 40002: "nina", 40003: "ned", 40004: "una", 40005: "ute", 40006: "uwe"}


def gname(gid: int) -> str:
    return NAMES_G.get(gid, str(gid))


def uname(uid: int) -> str:
    return NAMES_U.get(uid, str(uid))


def kernel_can_read(path: Path, uid: int, gids: list[int]) -> bool:
    pid = os.fork()
    if pid == 0:  # the child drops to the user and tries
        try:
            os.setgroups(gids)
            os.setgid(gids[0] if gids else 65534)
            os.setuid(uid)
            with path.open("rb") as fh:
                fh.read(1)
            os._exit(0)
        except PermissionError:
            os._exit(1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1)
    return code == 0


def enclave_can_read(acl: PosixAcl, uid: int, gids: list[int]) -> bool:
    """What the index does: rule groups = every group, then allowed any-of / denied none-of."""
    decision = narrow(acl, NAMES_G.values(), gname=gname, uname=uname)
    token = {gname(g) for g in gids} | {f"user:{uname(uid)}"}
    return bool(token & set(decision.allowed)) and not token & set(decision.denied)


@pytest.fixture
def doc() -> Iterator[Path]:
    # pytest's tmp_path lies below a 0700 directory other users cannot traverse
    folder = Path(tempfile.mkdtemp(prefix="enclave-acl-", dir="/tmp"))
    folder.chmod(0o755)
    f = folder / "doc.txt"
    f.write_text("secret\n")
    os.chown(f, 40001, 50001)
    f.chmod(0o640)
    yield f
    shutil.rmtree(folder)


def acl_of(f: Path) -> PosixAcl:
    st = f.stat()
    return read_acl(f, mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)


# (uid, gids, what Enclave decides). The permissions only narrow the rule groups, so a grant
# to one user (the owner, a named user) does not make readers: Enclave may be stricter than the
# kernel, never more generous.
CASES = [
    (40001, [50004], False),  # the owner: a user-level grant
    (40002, [50009], False),  # named user with read: a user-level grant
    (40003, [50002], False),  # named user without read, in a reading group: denied (exact)
    (40004, [50002], True),  # a member of a named reading group
    (40005, [50004], False),  # only other, which may not read
    (40006, [50003, 50004], True),  # rw group capped to r by the mask
    (40006, [50001], True),  # the owning group
]


def test_setfacl_named_users_groups_and_mask_match_the_kernel(doc: Path) -> None:
    assert acl_of(doc).has_xattr is False
    subprocess.run(
        ["setfacl", "-m", "u:40002:r,u:40003:-,g:50002:r,g:50003:rw,m::r,o::-", str(doc)],
        check=True,
    )
    acl = acl_of(doc)
    assert acl.has_xattr and acl.mask == 4 and AclEntry(USER, 4, 40002) in acl.entries
    decision = narrow(acl, NAMES_G.values(), gname=gname, uname=uname)
    assert set(decision.allowed) == {"owners", "readers", "writers"}
    assert "user:ned" in decision.denied
    for uid, gids, expected in CASES:
        ours, kernel = enclave_can_read(acl, uid, gids), kernel_can_read(doc, uid, gids)
        assert ours == expected, (uid, gids)
        assert kernel or not ours, f"Enclave grants {uid} {gids} what the kernel refuses"
    assert sum(kernel_can_read(doc, u, g) == e for u, g, e in CASES) == 5  # equal but 2 cases


def test_other_readable_with_a_group_entry_without_read(doc: Path) -> None:
    subprocess.run(["setfacl", "-m", "g:50003:-,m::r,o::r", str(doc)], check=True)
    acl = acl_of(doc)
    decision = narrow(acl, NAMES_G.values(), gname=gname, uname=uname)
    assert "writers" in decision.denied  # its members do not fall through to "other"
    for uid, gids in [(40005, [50004]), (40006, [50003]), (40006, [50003, 50004])]:
        assert enclave_can_read(acl, uid, gids) == kernel_can_read(doc, uid, gids), (uid, gids)


def test_mask_removing_read_leaves_only_the_owner(doc: Path) -> None:
    subprocess.run(["setfacl", "-m", "g:50002:r,m::-", str(doc)], check=True)
    decision = narrow(acl_of(doc), NAMES_G.values(), gname=gname, uname=uname)
    assert decision.allowed == ()
    assert not kernel_can_read(doc, 40004, [50002])


def test_xattr_round_trip_and_storage_form() -> None:
    entries = (
        AclEntry(1, 6, None),
        AclEntry(2, 4, 1000),
        AclEntry(4, 4, None),
        AclEntry(16, 4, None),
        AclEntry(32, 0, None),
    )
    raw = build_acl_xattr(entries)
    assert raw[:4] == b"\x02\x00\x00\x00" and len(raw) == 4 + 5 * 8
    assert parse_acl_xattr(raw) == entries
    acl = PosixAcl(0o640, 7, 8, entries, True)
    assert PosixAcl.from_bytes(acl.to_bytes()) == acl
    with pytest.raises(ValueError):
        parse_acl_xattr(b"\x01\x00\x00\x00")
