"""Streamlit entry point: ``streamlit run ui/app.py`` (or ``enclave run``)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `streamlit run ui/app.py` puts only ui/ on the path
    sys.path.insert(0, _ROOT)

from ui.shell import main  # noqa: E402

# Streamlit runs this file as ``__main__``. Sync workers (multiprocessing forkserver/spawn)
# re-import the main module as ``__mp_main__``: they must not start the app.
if __name__ == "__main__":
    main()
