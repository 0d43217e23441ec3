"""Robustness on the shared formats corpus (112 files, 19 formats, some malformed on purpose).

Every file must either give chunks or raise one of the five IngestError kinds with a reason;
any other exception, or a file that takes longer than the per-file timeout, fails the test.
Files run one by one in a worker process that is replaced after a timeout, so a hang cannot
stall the suite. The outcome counts are printed (run with ``-s`` to see them). OCR is off here:
this is the robustness check of the parsers; with OCR (on by default when tesseract is
installed) a damaged PDF of this corpus is recovered by OCR-ing every page, which takes minutes
on two cores and is bounded by ``ingest.parse_timeout_s`` in a sync (tests/parse/test_errors.py
covers OCR: test_scanned_pdf_with_ocr).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import time
from collections import Counter
from pathlib import Path

import pytest

from core.errors import IngestError

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "formats"
PER_FILE_TIMEOUT_S = 120.0
CODES = {
    "ingest.unsupported",
    "ingest.too_large",
    "ingest.encrypted",
    "ingest.parse_failed",
    "ingest.empty",
}


def _chunk_one(path: str) -> tuple[str, str, int]:
    """Runs in the worker: ('ok', '', chunks) | ('error', code + message, 0) | ('crash', ...)."""
    from core.settings import IngestSettings
    from ingest.parsing.chunk import chunk_file

    try:
        chunks = chunk_file(Path(path), IngestSettings(ocr=False))
    except IngestError as exc:
        return "error", f"{exc.code}\t{exc.message}", 0
    except BaseException as exc:
        return "crash", f"{type(exc).__name__}: {exc}", 0
    empty = [c.chunk_index for c in chunks if not c.text.strip()]
    if not chunks or empty:
        return "crash", f"chunks without text: {empty or 'none returned'}", 0
    return "ok", "", len(chunks)


def _new_pool() -> multiprocessing.pool.Pool:
    return multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=None)


@pytest.mark.slow
def test_every_corpus_file_parses_or_fails_with_a_reason() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"formats corpus not found at {CORPUS} (CI has it at ../shared/corpus)")
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    assert len(files) >= 100
    outcomes: dict[str, tuple[str, str, int]] = {}
    seconds: dict[str, float] = {}
    pool = _new_pool()
    try:
        for path in files:
            rel = str(path.relative_to(CORPUS))
            started = time.monotonic()
            job = pool.apply_async(_chunk_one, (str(path),))
            try:
                outcomes[rel] = job.get(timeout=PER_FILE_TIMEOUT_S)
            except multiprocessing.TimeoutError:
                outcomes[rel] = ("timeout", f"no result after {PER_FILE_TIMEOUT_S:.0f} s", 0)
                pool.terminate()
                pool = _new_pool()
            seconds[rel] = time.monotonic() - started
    finally:
        pool.terminate()

    bad = {rel: o for rel, o in outcomes.items() if o[0] in ("crash", "timeout")}
    by_reason: Counter[str] = Counter()
    for status, detail, _ in outcomes.values():
        by_reason[status if status != "error" else detail.split("\t")[0]] += 1
    print(f"\nformats corpus: {len(files)} files: {dict(by_reason)}")
    for rel, (status, detail, n) in sorted(outcomes.items()):
        print(f"  {status:5} {seconds[rel]:6.2f}s {rel}: {n if status == 'ok' else detail}")
    assert not bad, bad
    for rel, (status, detail, _) in outcomes.items():
        if status == "error":
            code, message = detail.split("\t", 1)
            assert code in CODES, (rel, code)
            assert message.strip(), rel
    assert by_reason["ok"] >= len(files) * 0.7
