"""How many CPU threads the in-process embedding model may use.

``ingest.worker_torch_threads`` (distributed workers) and ``retrieval.serving_torch_threads``
(the assistant) are set here before the model loads. ONNX Runtime sessions take the count when
they are created; torch takes it now if it is already imported, else when the torch backend
loads. Nothing here imports torch: the ONNX backends run without it.
"""

from __future__ import annotations

import sys

_threads: int | None = None


def set_threads(count: int | None) -> None:
    """Use ``count`` threads (``None``: leave the runtimes' defaults, the physical cores)."""
    global _threads
    if count is None:
        return
    _threads = count
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)


def threads() -> int | None:
    """The count set with :func:`set_threads`, or ``None``."""
    return _threads
