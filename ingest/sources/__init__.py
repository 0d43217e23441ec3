"""Sources a sync reads: :func:`open_source` picks the implementation from the root given."""

from __future__ import annotations

from pathlib import Path

from core.errors import SourceArgumentError
from core.settings import Settings
from ingest.sources.base import Source


def is_smb(root: str | Path) -> bool:
    return str(root).lower().startswith("smb://")


def check_root(root: Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise SourceArgumentError(f"the source root {path} does not exist")
    if not path.is_dir():
        raise SourceArgumentError(f"the source root {path} is not a directory")
    return path.resolve()


def open_source(settings: Settings, root: str | Path) -> Source:
    """An SMB share for ``smb://server/share/path`` (with the ``[smb]`` service account),
    else the local or mounted directory ``root``."""
    if is_smb(root):
        from ingest.sources.smb import SmbSource

        return SmbSource.open(str(root), settings.smb, settings.staging_dir)
    from ingest.sources.localtree import LocalSource

    return LocalSource(check_root(Path(root)), posix=settings.ingest.posix_permissions)
