"""Big plain text: Enclave's streaming fast path against unstructured's ``partition_text``.

    .venv/bin/python -m bench.parse_text [--mb 3.2] [--no-baseline]

Writes a synthetic handbook-like text of ``--mb`` MB (numbered sections of English prose with
blank-line paragraphs) to a temporary directory, chunks it with ``ingest.parsing.chunk.chunk_file``
(files above 256 KiB take the fast path) and, as the baseline in the same run, partitions the
same file with unstructured's ``partition_text`` (what the parser would do without the fast
path). Both are warmed up first on a small file (imports, spaCy model), so the times compare the
parsing itself. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

_WORDS = [
    *("employees", "travel", "policy", "approval", "expense", "receipt", "manager", "leave"),
    *("annual", "parental", "sick", "security", "password", "device", "incident", "report"),
    *("release", "review", "code", "on-call", "rotation", "budget", "invoice", "supplier"),
    *("office", "hours", "handbook", "section", "period", "request", "days", "weeks"),
]


def _text(target_chars: int) -> str:
    parts: list[str] = []
    size = 0
    n = 0
    while size < target_chars:
        words = [_WORDS[(n * 13 + i * 7) % len(_WORDS)] for i in range(90)]
        sentences = [" ".join(words[i : i + 15]).capitalize() + "." for i in range(0, 90, 15)]
        block = f"SECTION {n}\n\n" + " ".join(sentences[:3]) + "\n\n" + " ".join(sentences[3:])
        parts.append(block)
        size += len(block) + 2
        n += 1
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=3.2)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    from core.settings import IngestSettings
    from ingest.parsing.chunk import chunk_file
    from ingest.parsing.offline import prepare_unstructured

    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up (not timed): imports, libmagic, and the spaCy model that partition_text loads.
        small = Path(tmp) / "small.txt"
        small.write_text(_text(20_000), encoding="utf-8")
        chunk_file(small, IngestSettings())
        path = Path(tmp) / "big.txt"
        path.write_text(_text(int(args.mb * 1_000_000)), encoding="utf-8")
        started = time.perf_counter()
        chunks = chunk_file(path, IngestSettings())
        fast_s = time.perf_counter() - started
        result: dict[str, object] = {
            "bytes": path.stat().st_size,
            "fast_path_s": round(fast_s, 3),
            "chunks": len(chunks),
            "fast_path_mb_per_s": round(path.stat().st_size / 1e6 / fast_s, 2),
        }
        if not args.no_baseline:
            prepare_unstructured()
            from unstructured.partition.text import partition_text

            started = time.perf_counter()
            elements = partition_text(filename=str(path))
            base_s = time.perf_counter() - started
            result |= {
                "unstructured_partition_text_s": round(base_s, 3),
                "unstructured_elements": len(elements),
                "speedup": round(base_s / fast_s, 1),
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
