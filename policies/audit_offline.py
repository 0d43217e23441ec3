"""Verify a JSON-lines audit export away from the server (what an auditor does off-host).

Needs no database and no secret: the public key of the signing key (``--public-key``; without
it the key embedded in the export's manifest is used, which only shows the file is
self-consistent). Checked, line by line:

- every record's hash (``sha256(prev_hash + canonical_json(record fields))``) and its link to
  the line before (ids consecutive, ``prev_hash`` = the previous line's ``hash``);
- every record's signature over its position and hash (records written before signatures
  existed may be unsigned, but only before the first signed one);

and then the closing manifest: its signature, and that the lines are exactly what it lists
(first and last id, count, last hash, sha256 of the record lines). A file cut at either end,
with a line dropped, inserted, edited or reordered, or with the manifest missing, fails. An
export made by ``--since``/``--until`` starts mid-chain: its first record's ``prev_hash`` is
taken as given (its signature still covers it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from policies.audit_chain import canonical_json, chain_hash
from policies.audit_checkpoint import MANIFEST, Signed, TrustedKeys, anchor_body


@dataclass(frozen=True)
class ExportCheck:
    ok: bool
    records: int
    first_bad_line: int | None = None
    reason_code: str = "audit.export_intact"
    message: str = "export intact"
    checkpoint_head_id: int | None = None
    key_trusted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bad(n: int, line: int, code: str, msg: str) -> ExportCheck:
    return ExportCheck(False, n, line, code, msg)


class _Walk:
    """State of the line-by-line check."""

    def __init__(self, keys: TrustedKeys | None) -> None:
        self.keys = keys  # None until the manifest's key is known (untrusted mode)
        self.n = 0
        self.first: dict[str, Any] | None = None
        self.prev: dict[str, Any] | None = None
        self.signed_seen = False
        self.digest = hashlib.sha256()
        self.records: list[tuple[int, dict[str, Any]]] = []
        self.gap: ExportCheck | None = None

    def record(self, lineno: int, obj: dict[str, Any]) -> ExportCheck | None:
        rid = obj.get("id")
        if chain_hash(str(obj.get("prev_hash")), obj) != obj.get("hash"):
            return _bad(
                self.n, lineno, "audit.record_altered", f"line {lineno} (record {rid}) was altered"
            )
        if self.prev is not None:
            if not isinstance(rid, int) or rid <= self.prev["id"]:
                return _bad(
                    self.n,
                    lineno,
                    "audit.chain_broken",
                    f"line {lineno} (record {rid}) is out of order",
                )
            if rid != self.prev["id"] + 1:
                # A cut, unless the signed manifest says the export was filtered (checked
                # once the manifest, the last line, has been read).
                self.gap = self.gap or _bad(
                    self.n,
                    lineno,
                    "audit.record_missing",
                    f"record {self.prev['id'] + 1} is missing before line {lineno}",
                )
            elif obj.get("prev_hash") != self.prev["hash"]:
                return _bad(
                    self.n,
                    lineno,
                    "audit.chain_broken",
                    f"line {lineno} (record {rid}) does not link to the line before it",
                )
        if obj.get("signature"):
            self.signed_seen = True
        elif self.signed_seen:
            return _bad(
                self.n,
                lineno,
                "audit.signature_missing",
                f"line {lineno} (record {rid}) is unsigned although earlier records are signed",
            )
        self.digest.update((canonical_json(obj) + "\n").encode("utf-8"))
        self.first = self.first or obj
        self.prev = obj
        self.n += 1
        if obj.get("signature"):
            self.records.append((lineno, obj))
        return None

    def signatures(self, keys: TrustedKeys) -> ExportCheck | None:
        for lineno, obj in self.records:
            body = anchor_body(int(obj["id"]), str(obj["hash"]), str(obj["ts"]))
            if not keys.valid(body, obj.get("key_id"), obj.get("signature")):
                return _bad(
                    self.n,
                    lineno,
                    "audit.signature_invalid",
                    f"line {lineno} (record {obj.get('id')}) does not carry a valid signature",
                )
        return None


def verify_export(lines: Iterable[str], trusted_public_key: str | None = None) -> ExportCheck:
    walk = _Walk(None)
    manifest: Signed | None = None
    manifest_line = 0
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            return _bad(walk.n, lineno, "audit.export_malformed", f"line {lineno} is not JSON")
        if manifest is not None:
            return _bad(
                walk.n, lineno, "audit.export_malformed", f"line {lineno} follows the manifest"
            )
        if not isinstance(obj, dict):
            return _bad(walk.n, lineno, "audit.export_malformed", f"line {lineno} is not a record")
        if "checkpoint" in obj:
            return _bad(
                walk.n,
                lineno,
                "audit.export_legacy",
                "this export ends in a checkpoint, not a signed manifest (made before manifests "
                "existed): a cut at either end cannot be detected; export it again",
            )
        if MANIFEST in obj:
            manifest = Signed.from_dict(obj)
            manifest_line = lineno
            if manifest is None:
                return _bad(walk.n, lineno, "audit.export_malformed", "the manifest is malformed")
            continue
        problem = walk.record(lineno, obj)
        if problem is not None:
            return problem
    if manifest is None:
        return _bad(walk.n, walk.n + 1, "audit.export_unsigned", "the export has no manifest")
    pem = trusted_public_key or manifest.public_key or ""
    keys = TrustedKeys([pem] if pem else [])
    if not keys.signed_valid(manifest):
        return _bad(
            walk.n,
            manifest_line,
            "audit.checkpoint_invalid",
            "the manifest signature does not verify"
            + (" with the trusted key" if trusted_public_key else ""),
        )
    problem = walk.signatures(keys)
    if problem is not None:
        return problem
    if walk.gap is not None and not manifest.body.get("filters"):
        return walk.gap
    return _check_manifest(walk, manifest.body, manifest_line, trusted_public_key is not None)


def _check_manifest(walk: _Walk, body: dict[str, Any], line: int, trusted: bool) -> ExportCheck:
    first_id = walk.first["id"] if walk.first else None
    last_id = walk.prev["id"] if walk.prev else None
    last_hash = walk.prev["hash"] if walk.prev else None
    listed = (body.get("first_id"), body.get("last_id"), body.get("count"))
    if listed != (first_id, last_id, walk.n):
        return _bad(
            walk.n,
            line,
            "audit.export_cut",
            f"the manifest lists records {listed[0]}..{listed[1]} ({listed[2]} records) but the "
            f"file holds {first_id}..{last_id} ({walk.n}): lines were cut or added",
        )
    if body.get("last_hash") != last_hash or body.get("records_sha256") != walk.digest.hexdigest():
        return _bad(
            walk.n,
            line,
            "audit.checkpoint_mismatch",
            "the records do not match the signed manifest (edited, reordered or replaced)",
        )
    note = "" if trusted else " (signatures checked with the key inside the export only)"
    filters = body.get("filters")
    if filters:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(filters.items()))
        note += f"; filtered export ({shown}): records between these are not included"
    return ExportCheck(
        True,
        walk.n,
        None,
        "audit.export_intact",
        f"export intact: {walk.n} records ({first_id}..{last_id}), chain head at export "
        f"{body.get('head_id')}{note}",
        body.get("head_id"),
        trusted,
    )
