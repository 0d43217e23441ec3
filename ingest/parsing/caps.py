"""Caps on how much one file may expand into (``ingest.max_*``; docs/ingest.md).

A 100 KB DOCX held 45 MB of text that became 38,480 chunks and 1.1 GB of parser memory: size
on disk says little about what a file holds. Three checks, each skipping the file with
:class:`~core.errors.TooMuchTextError` (``ingest.too_much_text``) and a reason that names the
setting:

- before parsing, Office/ODF/EPUB files (ZIP containers): the unpacked size their directory
  declares (``max_unpacked_mb``) and the expansion ratio (``max_expansion_ratio``, only above
  :data:`RATIO_FLOOR_BYTES` unpacked, so small files with repetitive XML pass). This costs a
  read of the ZIP directory and stops a bomb before any parser allocates for it;
- while blocks are produced: the extracted text (``max_text_mb``, in millions of characters);
  the streaming text path stops reading at the cap;
- after chunking: the number of chunks (``max_chunks_per_file``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.errors import TooMuchTextError
from core.settings import IngestSettings
from ingest.parsing.blocks import Block

ZIP_KINDS = frozenset({"docx", "pptx", "xlsx", "odt", "epub"})
RATIO_FLOOR_BYTES = 8 * 1_000_000


def check_archive(path: Path, kind: str, settings: IngestSettings) -> None:
    """Refuse a ZIP-based document that would unpack into too much (see the module docstring).
    A file that is not a readable ZIP is left to the parser, which reports it."""
    if kind not in ZIP_KINDS:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(max(0, info.file_size) for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    packed = max(1, path.stat().st_size)
    limit = settings.max_unpacked_mb * 1_000_000
    if unpacked > limit:
        raise TooMuchTextError(
            f"the {kind.upper()} unpacks to {unpacked / 1e6:.1f} MB, above "
            f"ingest.max_unpacked_mb = {settings.max_unpacked_mb:g}"
        )
    ratio = unpacked / packed
    if unpacked > RATIO_FLOOR_BYTES and ratio > settings.max_expansion_ratio:
        raise TooMuchTextError(
            f"the {kind.upper()} expands {ratio:.0f}x ({packed / 1e3:.0f} KB to "
            f"{unpacked / 1e6:.1f} MB), above ingest.max_expansion_ratio = "
            f"{settings.max_expansion_ratio:g}: a compression bomb, or a document generated with "
            "a huge repeated part"
        )


def capped_blocks(blocks: Iterable[Block], settings: IngestSettings) -> Iterator[Block]:
    """``blocks`` until their text passes ``max_text_mb`` million characters, then the error."""
    limit = settings.max_text_mb * 1_000_000
    total = 0
    for block in blocks:
        total += len(block.text) + sum(len(cell) for row in block.rows for cell in row)
        if total > limit:
            raise TooMuchTextError(
                f"the file holds more than ingest.max_text_mb = {settings.max_text_mb:g} million "
                "characters of text"
            )
        yield block


def check_chunks(count: int, settings: IngestSettings) -> None:
    if count > settings.max_chunks_per_file:
        raise TooMuchTextError(
            f"the file makes {count} chunks, above ingest.max_chunks_per_file = "
            f"{settings.max_chunks_per_file}"
        )
