"""GGUF header metadata without loading the model.

``read_metadata`` parses only the GGUF key/value header (vocabulary arrays are skipped), so a
43 GB production file is checked in well under a second. Assembling the packaged small model
and hashing files belong to :mod:`policies.models` (``ensure_default_gguf``, ``file_sha256``),
the registry that approves model files by sha256.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import ModelFileError

_GGUF_MAGIC = b"GGUF"
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    name: str | None
    architecture: str | None
    context_length: int | None
    chat_template: str | None
    size_bytes: int


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise ModelFileError(f"truncated GGUF header in {fh.name}")
    return struct.unpack(fmt, data)[0]


def _read_str(fh: BinaryIO) -> str:
    n = _read(fh, "<Q")
    return fh.read(n).decode("utf-8", errors="replace")


def _read_value(fh: BinaryIO, vtype: int, keep: bool) -> Any:
    if vtype in _SCALARS:
        return _read(fh, _SCALARS[vtype])
    if vtype == _STRING:
        return _read_str(fh)
    if vtype == _ARRAY:
        itype = _read(fh, "<I")
        count = _read(fh, "<Q")
        if itype in _SCALARS and not keep:
            fh.seek(struct.calcsize(_SCALARS[itype]) * count, os.SEEK_CUR)
            return None
        items = [_read_value(fh, itype, keep) for _ in range(count)]
        return items if keep else None
    raise ModelFileError(f"unknown GGUF value type {vtype} in {fh.name}")


def read_metadata(path: Path) -> GGUFInfo:
    """Parse the GGUF key/value header (arrays such as the vocabulary are skipped)."""
    try:
        with path.open("rb") as fh:
            if fh.read(4) != _GGUF_MAGIC:
                raise ModelFileError(f"{path} is not a GGUF file")
            version = _read(fh, "<I")
            if version < 2:
                raise ModelFileError(f"{path}: GGUF version {version} is not supported")
            _read(fh, "<Q")  # tensor count
            kv_count = _read(fh, "<Q")
            meta: dict[str, Any] = {}
            for _ in range(kv_count):
                key = _read_str(fh)
                vtype = _read(fh, "<I")
                meta[key] = _read_value(fh, vtype, keep=vtype != _ARRAY)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from exc
    arch = meta.get("general.architecture")
    ctx = meta.get(f"{arch}.context_length") if arch else None
    return GGUFInfo(
        path=path,
        name=meta.get("general.name"),
        architecture=arch,
        context_length=int(ctx) if ctx is not None else None,
        chat_template=meta.get("tokenizer.chat_template"),
        size_bytes=path.stat().st_size,
    )
