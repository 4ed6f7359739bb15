"""How many large messages a process handles at once."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class LargeMessageGate:
    """At most `at_once` messages over `threshold_bytes` are processed or sent at the same
    time in this process. Parsing, sanitising and re-composing a message briefly costs
    several times its size in memory (about 300 MiB for 25 MB, bench/large_messages.py), and
    smtplib copies a message a few times while sending it; four worker threads on four
    large messages would need over a GiB.

    Worker processes run large messages on their own queue ("large") with `at_once`
    threads, so there a slot is always free and the other queues' threads never meet a
    large message. One-shot commands, which run their jobs in the calling thread, wait
    for a slot (`slot(size, wait=True)`); `wait=False` turns a large message away at once
    (admitted False) while every slot is taken."""

    def __init__(self, at_once: int, threshold_bytes: int) -> None:
        self.threshold_bytes = threshold_bytes
        self._slots = threading.BoundedSemaphore(at_once)

    def is_large(self, size: int) -> bool:
        return size >= self.threshold_bytes

    @contextmanager
    def slot(self, size: int, *, wait: bool) -> Iterator[bool]:
        if not self.is_large(size):
            yield True
            return
        if not self._slots.acquire(blocking=wait):
            yield False
            return
        try:
            yield True
        finally:
            self._slots.release()
