"""Large messages are processed a bounded number at a time; small ones never wait."""

from __future__ import annotations

import threading
import time

from workers.large_messages import LargeMessageGate


def _most_at_once(gate: LargeMessageGate, sizes: list[int]) -> int:
    lock, current, most = threading.Lock(), [0], [0]

    def work(size: int) -> None:
        with gate.slot(size):
            with lock:
                current[0] += 1
                most[0] = max(most[0], current[0])
            time.sleep(0.05)
            with lock:
                current[0] -= 1

    threads = [threading.Thread(target=work, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return most[0]


def test_large_messages_wait_for_a_slot():
    assert _most_at_once(LargeMessageGate(1, 1000), [5000] * 4) == 1
    assert _most_at_once(LargeMessageGate(2, 1000), [5000] * 4) == 2


def test_small_messages_do_not_wait():
    assert _most_at_once(LargeMessageGate(1, 1000), [10] * 4) == 4
