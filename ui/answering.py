"""One answer being streamed to the page, and how Stop ends it.

The assistant's ``ask_stream`` is a generator: text pieces, then the final
:class:`~assistant.types.Answer`. Closing it (``gen.close()``) is the assistant's contract for
"the user stopped": it ends the request cleanly and audits it with outcome ``stopped``.

The generator runs in a worker thread and hands its items over a queue, for two reasons:

- the page stays responsive: while the model has not produced a piece yet (retrieval, prompt
  processing), the page still updates an elapsed-time line a few times per second, and every
  such update is a point where Streamlit can interrupt the script for a Stop click;
- Stop does not depend on the generator yielding: :meth:`AnswerStream.stop` only sets a flag;
  the worker closes the generator as soon as it gets control back (at once if it is between
  pieces, else after the piece it is waiting for).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from assistant.types import Answer


@dataclass(frozen=True)
class Tick:
    """Nothing new yet; ``elapsed`` seconds since the question was sent."""

    elapsed: float


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


class AnswerStream:
    """Consume ``ask_stream`` in a worker thread; the page reads :meth:`events`."""

    def __init__(self, gen: Iterator[str | Answer], *, poll_s: float = 0.25) -> None:
        self._gen = gen
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._started = time.monotonic()
        self.closed = threading.Event()  # set once the generator has been closed
        self._thread = threading.Thread(target=self._pump, name="enclave-answer", daemon=True)

    def start(self) -> AnswerStream:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _pump(self) -> None:
        try:
            answered = False
            for item in self._gen:
                if isinstance(item, Answer):
                    # Finished (and audited as answered): kept even if Stop came just now; the
                    # generator is run to its end, so closing it below changes nothing.
                    self._queue.put(item)
                    answered = True
                elif not answered:
                    if self._stop.is_set():
                        break
                    self._queue.put(item)
        except BaseException as exc:  # handed to the page, which shows an error id
            self._queue.put(_Failed(exc))
        finally:
            try:
                close = getattr(self._gen, "close", None)
                if close is not None:
                    close()  # a stopped request ends here, audited as "stopped"
            finally:
                self.closed.set()
                self._queue.put(_DONE)

    def events(self) -> Iterator[str | Answer | Tick]:
        """Pieces of text, then the Answer; a :class:`Tick` whenever nothing came for a poll
        interval. Re-raises an exception of the assistant."""
        while True:
            try:
                item = self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                yield Tick(time.monotonic() - self._started)
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    def stop(self) -> None:
        """Ask the worker to close the generator (non-blocking)."""
        self._stop.set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self.closed.wait(timeout)

    def pending_answer(self) -> Answer | None:
        """An Answer already queued but not read (the request finished as it was stopped)."""
        found: Answer | None = None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return found
            if isinstance(item, Answer):
                found = item
