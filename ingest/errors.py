"""Why a file could not be turned into chunks.

:func:`ingest.chunk.chunk_file` raises only these (all derive from
:class:`policies.errors.IngestError`). The sync records ``code`` as the file's state reason:
``unsupported``, ``too_large``, ``encrypted`` and ``empty`` mean *skipped* (nothing to index, and
re-trying will not help until the file changes); ``parse_failed`` means *failed* (the file looks
like a supported document but is damaged). ``message`` says what is wrong in plain words.
"""

from __future__ import annotations

from policies.errors import IngestError


class UnsupportedFileError(IngestError):
    """The file's content (detected from its bytes, not only its name) is not a format we read."""

    code = "ingest.unsupported"


class FileTooLargeError(IngestError):
    """The file is bigger than ``ingest.max_file_mb``."""

    code = "ingest.too_large"


class EncryptedFileError(IngestError):
    """The file is password-protected (PDF, Office) and cannot be read without the password."""

    code = "ingest.encrypted"


class ParseFailedError(IngestError):
    """The file claims a supported format but could not be read (corrupt, truncated, timed out)."""

    code = "ingest.parse_failed"


class EmptyDocumentError(IngestError):
    """The file was read but holds no text (blank, images only without OCR, no text layer)."""

    code = "ingest.empty"


SKIP_CODES = frozenset(
    {
        UnsupportedFileError.code,
        FileTooLargeError.code,
        EncryptedFileError.code,
        EmptyDocumentError.code,
    }
)
"""Codes that mean "skipped" rather than "failed" in the per-file sync status."""
