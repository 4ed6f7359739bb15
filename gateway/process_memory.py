"""Memory the process gives back: large message buffers returned to the system when freed.

glibc serves an allocation above its mmap threshold (128 KiB at start) with a mapping of its
own, unmapped when freed; but after the first such block is freed it raises the threshold to
that block's size (up to 32 MiB), so the buffers of every later large message come from the
heap, which keeps what it grew to. Every command sets it at start (gateway/cli). One 25 MB message then left a worker 290 MiB larger
(bench/throughput.py, scenario large); with the threshold fixed at 8 MiB, 145 MiB, for about
0.2 s more CPU on such a message (fresh pages) and nothing for ordinary mail, whose buffers are
far smaller. Other C libraries: nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter; setting it also turns the dynamic threshold off
LARGE_BUFFER_BYTES = 8 * 1024 * 1024


def return_large_buffers(threshold: int = LARGE_BUFFER_BYTES) -> bool:
    """Fix the C library's mmap threshold at `threshold` bytes; False where it has no such
    setting (musl's mallopt does nothing and says so)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
