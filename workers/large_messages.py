"""How many large messages a process handles at once."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

RETRY_DELAY_MS = 500  # a large message that finds no free slot is queued again after this


class LargeMessageGate:
    """At most `at_once` messages over `threshold_bytes` are processed or sent at the same
    time in this process. Parsing, sanitising and re-composing a message briefly costs
    several times its size in memory (about 300 MiB for 25 MB, PERFORMANCE.md), and
    smtplib copies a message a few times while sending it; four worker threads on four
    large messages would need over a GiB.

    `slot(size, wait=False)` does not block: a large message that finds every slot taken
    is admitted=False and its job puts it back on the queue, so the worker thread goes on
    with small messages, deliveries and timers meanwhile. One-shot commands, which run
    their jobs in the calling thread, wait instead."""

    def __init__(self, at_once: int, threshold_bytes: int) -> None:
        self.threshold_bytes = threshold_bytes
        self._slots = threading.BoundedSemaphore(at_once)

    @contextmanager
    def slot(self, size: int, *, wait: bool) -> Iterator[bool]:
        if size < self.threshold_bytes:
            yield True
            return
        if not self._slots.acquire(blocking=wait):
            yield False
            return
        try:
            yield True
        finally:
            self._slots.release()
