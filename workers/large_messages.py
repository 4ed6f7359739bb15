"""How many large messages a process handles at once."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class LargeMessageGate:
    """At most `at_once` messages over `threshold_bytes` are processed or sent at the same
    time in this process. Parsing, sanitising and re-composing a message briefly costs
    several times its size in memory (about 300 MiB for 25 MB, PERFORMANCE.md), and
    smtplib copies a message a few times while sending it; four worker threads on four
    large messages would need over a GiB. Smaller messages never wait."""

    def __init__(self, at_once: int, threshold_bytes: int) -> None:
        self.threshold_bytes = threshold_bytes
        self._slots = threading.BoundedSemaphore(at_once)

    @contextmanager
    def slot(self, size: int) -> Iterator[None]:
        if size < self.threshold_bytes:
            yield
            return
        with self._slots:
            yield
