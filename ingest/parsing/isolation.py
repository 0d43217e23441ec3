"""Keep torch out of the parser processes.

spaCy's thinc imports torch whenever it is installed, and unstructured imports spaCy for every
text format, so each parser process would map the whole torch library (about 190 MB of its
resident memory) without ever using it: parsing, PDF text extraction and tesseract OCR run
without torch. Imported first in the workers' forkserver; marking torch absent there makes
thinc fall back to its numpy ops. The embedding model runs in the sync's main process, which is
not affected.
"""

from __future__ import annotations

import sys

if "torch" not in sys.modules:
    sys.modules["torch"] = None  # type: ignore[assignment]
