"""Child-process side of the single-process and crash tests (run with ``python -m``).

python -m tests.index.child hold KIND ROOT        open, write the corpus, print READY, wait
python -m tests.index.child try KIND ROOT         try to open; print the outcome as JSON
python -m tests.index.child write-die KIND ROOT N  write N points, flush, print READY, hang
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from core.errors import StoreLockedError
from ingest.index import open_index
from tests.index.data import DIM, chunk, settings_for


def main(argv: list[str]) -> None:
    cmd, kind, root = argv[0], argv[1], Path(argv[2])
    if cmd == "try":
        try:
            idx = open_index(settings_for(kind, root))
        except StoreLockedError as exc:
            print(json.dumps({"locked": True, "code": exc.code, "message": str(exc)}), flush=True)
            return
        n = idx.count()
        idx.close()
        print(json.dumps({"locked": False, "count": n}), flush=True)
        return
    idx = open_index(settings_for(kind, root))
    idx.ensure_collection(DIM)
    if cmd == "hold":
        print("READY", flush=True)
        sys.stdin.readline()  # parent says when to let go
        idx.close()
        return
    if cmd == "write-die":
        rng = random.Random(11)
        points = [
            chunk(
                rng,
                source="s",
                path=f"doc{i // 4}.md",
                index=i % 4,
                text=f"crash test chunk {i}",
                groups=["eng"],
            )
            for i in range(int(argv[3]))
        ]
        for start in range(0, len(points), 50):
            idx.upsert(points[start : start + 50])
        idx.flush()
        print("READY", flush=True)
        while True:  # killed by the parent with SIGKILL: no close(), no atexit
            time.sleep(1)
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
