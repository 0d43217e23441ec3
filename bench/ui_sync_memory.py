"""UI process hygiene: memory and child processes of the UI process before and after a sync.

    .venv/bin/python -m bench.ui_sync_memory                     # the sample documents
    .venv/bin/python -m bench.ui_sync_memory --corpus DIR        # any folder

Prints one JSON object. Each variant runs in a fresh child process, the way the UI does it: the
UI's resources (:mod:`ui.runtime`: index, embedder, model) are loaded and warmed, the RSS/PSS
of the process and its descendants are read ("idle"), then a sync of the corpus runs through
the UI's :class:`~ui.sync_runner.SyncRunner` (real parser workers, real embedder, Qdrant Edge)
and the same figures are read 3 s after it ended; then a second sync (another source, the same
files) shows whether memory keeps growing. Variants:

- ``release``: what the UI does (``release_sync_memory`` after every sync);
- ``baseline``: the same sync without it (what the UI did before), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]


def _snapshot() -> dict[str, Any]:
    me = psutil.Process()
    kids = me.children(recursive=True)
    own = me.memory_full_info()
    out: dict[str, Any] = {
        "ui_rss_mb": round(own.rss / 2**20, 1),
        "ui_pss_mb": round(own.pss / 2**20, 1),
        "children": [],
    }
    for kid in kids:
        try:
            info = kid.memory_full_info()
            out["children"].append(
                {
                    "pid": kid.pid,
                    "status": kid.status(),
                    "rss_mb": round(info.rss / 2**20, 1),
                    "cmd": " ".join(kid.cmdline())[:80],
                }
            )
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            out["children"].append({"pid": kid.pid, "status": "zombie-or-gone"})
    out["children_rss_mb"] = round(sum(c.get("rss_mb", 0) for c in out["children"]), 1)
    out["zombies"] = sum(1 for c in out["children"] if c["status"] in ("zombie", "zombie-or-gone"))
    return out


def _child(config: str, corpus: str, release: bool) -> None:
    """One variant, inside a fresh process (prints its JSON)."""
    os.environ["ENCLAVE_CONFIG"] = config
    import streamlit  # noqa: F401  (loaded in the real UI process before any sync)

    from ui import runtime, sync_runner

    if not release:
        sync_runner.release_sync_memory = lambda: None  # type: ignore[assignment]
    resources = runtime.for_key()
    assistant = resources.assistant()
    assistant.model_identity()
    _ = assistant.llm
    principal = resources.policies().current_principal("bench") or None
    assert principal is not None
    list(assistant.ask_stream("warm up", principal))  # every lazy piece loaded once
    time.sleep(3)
    idle = _snapshot()
    runner = resources.sync_runner()
    out: dict[str, Any] = {"variant": "release" if release else "baseline", "idle": idle}
    for n in (1, 2):  # the second sync shows the steady state (the first imports the sync code)
        started = time.perf_counter()
        runner.start(
            Path(corpus), f"bench{n}", resources.settings.ingest.workers, index=resources.index()
        )
        state = runner.wait()
        took = time.perf_counter() - started
        time.sleep(3)
        after = _snapshot()
        out[f"sync{n}"] = {
            "seconds": round(took, 1),
            "files_added": (state.counters if state else {}).get("added"),
            "after": after,
            "ui_rss_growth_mb": round(after["ui_rss_mb"] - idle["ui_rss_mb"], 1),
        }
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, help="folder to sync (default: the samples)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2] == "release")
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if corpus is None:
            sys.path.insert(0, str(REPO))
            from samples.generate import generate

            corpus = Path(tmp) / "docs"
            generate(corpus)
        for variant in ("baseline", "release"):
            base = Path(tmp) / variant
            base.mkdir()
            (base / "directory.yaml").write_text("users:\n  bench: {groups: [everyone]}\n")
            (base / "access.yaml").write_text("default: [everyone]\nrules: []\n")
            config = base / "enclave.toml"
            config.write_text(
                'data_dir = "data"\ndirectory = "directory.yaml"\naccess_rules = "access.yaml"\n'
                "[ingest]\nworkers = 1\nocr = false\n[ui]\nwarm_up = false\n"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
            env["HF_HUB_OFFLINE"] = "1"
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.ui_sync_memory",
                    "--child",
                    str(config),
                    str(corpus),
                    variant,
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps({"corpus": str(args.corpus or "samples"), "runs": results}, indent=2))


if __name__ == "__main__":
    main()
