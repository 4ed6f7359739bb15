"""One log line per outage: a dependency (the database, the broker) that stops answering is
logged once when the episode starts and once when it ends, however many operations fail
in between (a traceback per failed job would bury everything else)."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("gateway.outage")


class Outage:
    """The availability of one dependency as this process sees it."""

    def __init__(self, name: str, *, on_start=None) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0
        self._on_start = on_start

    @property
    def ongoing(self) -> bool:
        with self._lock:
            return self._since is not None

    def failed(self, error: BaseException | str, doing: str) -> None:
        """An operation failed because `name` is unavailable; logs only the first of an episode."""
        with self._lock:
            self._failures += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("%s unavailable (%s): %s; retrying until it answers", self.name, doing,
                    str(error).splitlines()[0] if str(error) else type(error).__name__)
        if self._on_start is not None:
            self._on_start()

    def succeeded(self, detail: str = "") -> None:
        """An operation worked: ends the episode, if one was going on."""
        with self._lock:
            if self._since is None:
                return
            lasted, failures = time.monotonic() - self._since, self._failures
            self._since, self._failures = None, 0
        log.warning("%s reachable again after %.1f s (%s operations had failed)%s", self.name, lasted, failures,
                    f"; {detail}" if detail else "")


def id_list(ids, limit: int = 50) -> str:
    """Ids for a log line: `1, 2, 3`, the first `limit` and how many more; `none` if empty."""
    listed = [str(i) for i in ids]
    if not listed:
        return "none"
    return ", ".join(listed[:limit]) + (f" and {len(listed) - limit} more" if len(listed) > limit else "")
