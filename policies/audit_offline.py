"""Verify a JSON-lines audit export away from the server (what an auditor does off-host).

Every record line is re-hashed (``sha256(prev_hash + canonical_json(record without hash))``)
and must link to the line before it; the closing checkpoint line must carry a valid ed25519
signature (against the public key the auditor trusts, or, failing that, the key embedded in the
export) and, when the export runs up to the checkpoint, name the last record's hash. An export cut
by ``--since``/``--until`` starts mid-chain: its first record is taken as given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from policies.audit_chain import chain_hash
from policies.audit_checkpoint import signature_valid


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


def verify_export(lines: Iterable[str], trusted_public_key: str | None = None) -> ExportCheck:
    n = 0
    prev: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            return _bad(n, lineno, "audit.export_malformed", f"line {lineno} is not JSON")
        if checkpoint is not None:
            return _bad(
                n, lineno, "audit.export_malformed", f"line {lineno} follows the checkpoint line"
            )
        if "checkpoint" in obj:
            checkpoint = dict(obj, line=lineno)
            continue
        if chain_hash(str(obj.get("prev_hash")), obj) != obj.get("hash"):
            return _bad(
                n,
                lineno,
                "audit.record_altered",
                f"line {lineno} (record {obj.get('id')}) was altered",
            )
        if prev is not None:
            if obj.get("id") != prev["id"] + 1:
                return _bad(
                    n,
                    lineno,
                    "audit.record_missing",
                    f"record {prev['id'] + 1} is missing before line {lineno}",
                )
            if obj.get("prev_hash") != prev["hash"]:
                return _bad(
                    n,
                    lineno,
                    "audit.chain_broken",
                    f"line {lineno} (record {obj.get('id')}) does not link to the line before it",
                )
        prev = obj
        n += 1
    if checkpoint is None:
        return _bad(n, n + 1, "audit.export_unsigned", "the export has no checkpoint line")
    cp = checkpoint["checkpoint"]
    key = trusted_public_key or checkpoint.get("public_key", "")
    if not signature_valid(cp, key, checkpoint["signature"]):
        return _bad(
            n,
            checkpoint["line"],
            "audit.checkpoint_invalid",
            "the checkpoint signature does not verify"
            + (" with the trusted key" if trusted_public_key else ""),
        )
    if prev is not None and prev["id"] == cp["head_id"] and prev["hash"] != cp["head_hash"]:
        return _bad(
            n,
            checkpoint["line"],
            "audit.checkpoint_mismatch",
            "the last record does not match the signed checkpoint",
        )
    trusted = trusted_public_key is not None
    note = "" if trusted else " (signature checked with the key inside the export only)"
    return ExportCheck(
        True,
        n,
        None,
        "audit.export_intact",
        f"export intact: {n} records, checkpoint at record {cp['head_id']}{note}",
        cp["head_id"],
        trusted,
    )
