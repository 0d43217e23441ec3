"""Parser processes run without torch: same chunks, less memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ingest.parsing.workers import PRELOAD

_PROBE = """
import json, sys
from pathlib import Path
import ingest.parsing.isolation
from ingest.parsing.chunk import chunk_file
from core.settings import IngestSettings
root = Path(sys.argv[1])
chunks = {str(p.relative_to(root)): [c.text for c in chunk_file(p, IngestSettings())]
          for p in sorted(root.rglob("*")) if p.is_file()}
print(json.dumps({"torch_loaded": sys.modules.get("torch") is not None, "chunks": chunks}))
"""


def test_isolation_is_preloaded_first() -> None:
    assert PRELOAD[0] == "ingest.parsing.isolation"


def test_parsing_without_torch_gives_the_same_chunks(tmp_path: Path) -> None:
    from core.settings import IngestSettings
    from ingest.parsing.chunk import chunk_file
    from samples.generate import generate

    root = tmp_path / "docs"
    generate(root)
    expected = {
        str(p.relative_to(root)): [c.text for c in chunk_file(p, IngestSettings())]
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(root)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch_loaded"] is False
    assert result["chunks"] == expected
    assert sum(len(v) for v in expected.values()) > 20
