"""What an administrator does to a share, over SMB, for the tests: folders, files, NT ACLs.

Built on the product's :class:`~ingest.sources.smbclient.SmbShare` (its compound transport),
connected as the domain Administrator. ACLs are set the way Windows Explorer sets them:
explicit entries plus the entries the parent passes down (flagged INHERITED), with the
auto-inherit control bits, and :meth:`Admin.propagate` re-computes inherited entries of the
descendants after a folder's ACL changed (the server does not; measured on Samba).
"""

from __future__ import annotations

import struct
from typing import Any

from smbprotocol.file_info import FileInformationClass, InfoType
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    Open,
    SMB2SetInfoRequest,
    SMB2WriteRequest,
)

from ingest.sources.smbclient import SmbShare, wire_path
from policies import ntacl as N
from tests.smb.dc import ADMIN_PASSWORD, DC

_WRITE = 0x00120116 | 0x00010000  # FILE_GENERIC_WRITE | DELETE
_DIR_CREATE = 0x00100080
_SD_WRITE = 0x00040000 | 0x00080000 | 0x00020000  # WRITE_DAC | WRITE_OWNER | READ_CONTROL


class AdminError(RuntimeError):
    pass


def _check(res: list[Any], what: str, upto: int) -> None:
    for slot in res[:upto]:
        if isinstance(slot, Exception):
            raise AdminError(f"{what}: {slot}")


class Admin:
    def __init__(self, dc: DC) -> None:
        self.share = SmbShare(
            dc.ip, dc.share, dc.account("Administrator"), ADMIN_PASSWORD, port=dc.smb_port
        ).connect()

    def close(self) -> None:
        self.share.close()

    def _create(self, path: str, access: int, options: int, disposition: int) -> Any:
        req = SmbShare.create_request(path, access, options)
        req["create_disposition"] = disposition
        return req

    def mkdir(self, path: str) -> None:
        res = self.share.run(
            [
                self._create(
                    path,
                    _DIR_CREATE,
                    CreateOptions.FILE_DIRECTORY_FILE,
                    CreateDisposition.FILE_OPEN_IF,
                ),
                SmbShare.close_request(),
            ]
        )
        _check(res, f"mkdir {path}", 1)

    def write(self, path: str, data: bytes) -> None:
        write = SMB2WriteRequest()
        write["length"] = len(data)
        write["offset"] = 0
        write["file_id"] = Open._RELATED_COMPOUND_FILE_ID
        write["buffer"] = data
        res = self.share.run(
            [
                self._create(
                    path,
                    _WRITE,
                    CreateOptions.FILE_NON_DIRECTORY_FILE,
                    CreateDisposition.FILE_OVERWRITE_IF,
                ),
                write,
                SmbShare.close_request(),
            ]
        )
        _check(res, f"write {path}", 2)

    def set_sd(self, path: str, sd: bytes, *, owner: bool = False) -> None:
        info = N.DACL_SECURITY_INFORMATION | (N.OWNER_SECURITY_INFORMATION if owner else 0)
        req = SMB2SetInfoRequest()
        req["info_type"] = InfoType.SMB2_0_INFO_SECURITY
        req["file_info_class"] = 0
        req["additional_information"] = info
        req["file_id"] = Open._RELATED_COMPOUND_FILE_ID
        req["buffer"] = sd
        res = self.share.run(
            [
                self._create(path, _SD_WRITE, 0, CreateDisposition.FILE_OPEN),
                req,
                SmbShare.close_request(),
            ]
        )
        _check(res, f"set ACL of {path}", 2)

    def sd(self, path: str, *, directory: bool) -> N.SecurityDescriptor:
        return N.parse_sd(self.share.read_sd(path, directory=directory))

    def set_acl(
        self, path: str, explicit: list[N.Ace], *, directory: bool, protected: bool = False
    ) -> None:
        """Explicit entries + what the parent passes down (unless ``protected``)."""
        aces = list(explicit)
        if path and not protected:
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            aces += inherit_from(self.sd(parent, directory=True), directory=directory)
        self.set_sd(
            path,
            N.build_sd(N.BUILTIN_ADMINISTRATORS, None, aces, protected=protected),
            owner=True,
        )

    def propagate(self, path: str) -> int:
        """Re-compute inherited entries below ``path`` (what Explorer does after an edit)."""
        parent = self.sd(path, directory=True)
        done = 0
        for child in self.share.listdir(path):
            sd = self.sd(child.path, directory=child.is_dir)
            if sd.protected:
                continue
            explicit = [a for a in sd.dacl or () if not a.inherited]
            aces = explicit + inherit_from(parent, directory=child.is_dir)
            self.set_sd(child.path, N.build_sd(None, None, aces))
            done += 1
            if child.is_dir:
                done += self.propagate(child.path)
        return done

    def rename(self, src: str, dst: str) -> None:
        name = wire_path(dst).encode("utf-16-le")
        req = SMB2SetInfoRequest()
        req["info_type"] = InfoType.SMB2_0_INFO_FILE
        req["file_info_class"] = FileInformationClass.FILE_RENAME_INFORMATION
        req["file_id"] = Open._RELATED_COMPOUND_FILE_ID
        req["buffer"] = struct.pack("<B7xQI", 0, 0, len(name)) + name
        res = self.share.run(
            [
                self._create(
                    src, 0x00010000 | 0x00000080 | 0x00100000, 0, CreateDisposition.FILE_OPEN
                ),
                req,
                SmbShare.close_request(),
            ]
        )
        _check(res, f"rename {src}", 2)

    def remove(self, path: str, *, directory: bool = False) -> None:
        if directory:
            for child in self.share.listdir(path):
                self.remove(child.path, directory=child.is_dir)
        options = (
            CreateOptions.FILE_DIRECTORY_FILE
            if directory
            else CreateOptions.FILE_NON_DIRECTORY_FILE
        ) | CreateOptions.FILE_DELETE_ON_CLOSE
        res = self.share.run(
            [
                self._create(path, 0x00010000 | 0x00000080, options, CreateDisposition.FILE_OPEN),
                SmbShare.close_request(),
            ]
        )
        _check(res, f"remove {path}", 1)


def inherit_from(parent: N.SecurityDescriptor, *, directory: bool) -> list[N.Ace]:
    """Entries a child of ``parent`` receives (MS-DTYP 2.5.3.4), flagged INHERITED; CREATOR
    OWNER templates are passed on as inherit-only (the tests' trees do not use them)."""
    out: list[N.Ace] = []
    for a in parent.dacl or ():
        f = a.flags
        if not f & N.OICI:
            continue
        if not directory:
            if f & N.OBJECT_INHERIT_ACE:
                out.append(N.Ace(a.type, N.INHERITED_ACE, a.mask, a.sid))
            continue
        if f & N.CONTAINER_INHERIT_ACE:
            if f & N.NO_PROPAGATE_INHERIT_ACE:
                out.append(N.Ace(a.type, N.INHERITED_ACE, a.mask, a.sid))
            else:
                out.append(N.Ace(a.type, (f & N.OICI) | N.INHERITED_ACE, a.mask, a.sid))
        elif not f & N.NO_PROPAGATE_INHERIT_ACE:
            flags = N.OBJECT_INHERIT_ACE | N.INHERIT_ONLY_ACE | N.INHERITED_ACE
            out.append(N.Ace(a.type, flags, a.mask, a.sid))
    return out
