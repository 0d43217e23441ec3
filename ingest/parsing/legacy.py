"""Legacy Office files (.doc, .xls, .ppt) -> their Open XML form, with LibreOffice headless.

Runs in the parser worker (the file's own process, so a stuck conversion only costs that file):
``soffice --headless --convert-to docx|xlsx|pptx`` into a private temporary directory, with its
own user profile (two soffice processes sharing a profile block each other), in its own
process group, killed as a group when it runs past ``ingest.convert_timeout_s``. The converted
file is parsed by the Open XML partitioner; the document keeps its original kind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.errors import ParseFailedError, UnsupportedFileError

TARGETS = {"doc": "docx", "xls": "xlsx", "ppt": "pptx"}
NAMES = {
    "doc": "Word 97-2003 (.doc)",
    "xls": "Excel 97-2003 (.xls)",
    "ppt": "PowerPoint 97-2003 (.ppt)",
}


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _profile_dir() -> Path:
    """One LibreOffice profile per worker process, created on its first conversion."""
    path = Path(tempfile.gettempdir()) / f"enclave-soffice-{os.getuid()}-{os.getpid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@contextlib.contextmanager
def converted(path: Path, kind: str, timeout_s: float) -> Iterator[Path]:
    """The Open XML conversion of legacy file ``path``, deleted when the block ends."""
    exe = soffice()
    if exe is None:
        raise UnsupportedFileError(
            f"{NAMES[kind]} needs LibreOffice (soffice) to convert, which is not installed"
        )
    target = TARGETS[kind]
    with tempfile.TemporaryDirectory(prefix="enclave-convert-") as tmp:
        out_dir = Path(tmp)
        # A plain ASCII name: soffice derives the output name from the input's.
        src = out_dir / f"input.{kind}"
        os.symlink(path.resolve(), src)
        cmd = [
            exe,
            f"-env:UserInstallation={_profile_dir().as_uri()}",
            "--headless",
            "--norestore",
            "--nologo",
            "--nolockcheck",
            "--convert-to",
            target,
            "--outdir",
            str(out_dir / "out"),
            str(src),
        ]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ParseFailedError(
                f"LibreOffice did not convert this {NAMES[kind]} file within "
                f"ingest.convert_timeout_s = {timeout_s:g} s; it was stopped",
                code="ingest.convert_timeout",
            ) from None
        result = out_dir / "out" / f"input.{target}"
        if proc.returncode != 0 or not result.exists() or result.stat().st_size == 0:
            said = output.decode(errors="replace").strip().splitlines()[-1:] if output else []
            raise ParseFailedError(
                f"LibreOffice could not convert this {NAMES[kind]} file (exit code "
                f"{proc.returncode}{': ' + said[0][:200] if said else ''})",
                code="ingest.convert_failed",
            )
        yield result
