"""Large messages are handled a bounded number at a time; small ones never wait; a large
one that finds no slot is turned away at once (its job queues it again) unless the caller
runs jobs in its own thread and waits."""

from __future__ import annotations

import threading
import time

from workers.large_messages import LargeMessageGate


def _most_at_once(gate: LargeMessageGate, sizes: list[int]) -> int:
    lock, current, most = threading.Lock(), [0], [0]

    def work(size: int) -> None:
        with gate.slot(size, wait=True) as admitted:
            assert admitted
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


def test_without_waiting_a_large_message_is_turned_away_while_the_slot_is_taken():
    gate = LargeMessageGate(1, 1000)
    with gate.slot(5000, wait=False) as first:
        with gate.slot(5000, wait=False) as second, gate.slot(10, wait=False) as small:
            assert (first, second, small) == (True, False, True)
    with gate.slot(5000, wait=False) as again:  # the slot was given back
        assert again
