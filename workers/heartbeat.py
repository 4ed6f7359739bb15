"""A worker process's heartbeat: every [workers] heartbeat_seconds it says it is alive,
renews the claims of the deliveries it is sending (so a slow delivery is never taken for
a dead one), records the smarthost 250s its journal holds that the database has not got
yet (sooner, backing off from half a second, while there are some), and adopts the
journals of processes of this host that stopped."""

from __future__ import annotations

import logging
import os
import socket
import threading

from gateway import delivery, store
from gateway.db import DatabaseUnavailable
from gateway.outage import id_list

log = logging.getLogger(__name__)
FIRST_RETRY_SECONDS = 0.5


class Heartbeat:
    def __init__(self, runtime, *, role: str, queues: list[str]) -> None:
        self.runtime = runtime
        self.role = role
        self.queues = queues
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._retry = FIRST_RETRY_SECONDS

    def start(self) -> None:
        self.tick()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._next_delay):
            self.tick()

    @property
    def _next_delay(self) -> float:
        return getattr(self, "_delay", self.runtime.settings.workers.heartbeat_seconds)

    def tick(self) -> None:
        """One beat; never raises (a failure is one line per outage, then the next beat retries)."""
        runtime = self.runtime
        interval = runtime.settings.workers.heartbeat_seconds
        sender = runtime.current_sender
        # entries of deliveries still in progress are recorded by their own thread
        busy = set(sender.in_flight()) if sender else set()
        waiting = [e for e in sender.journal.unrecorded() if e.outbox_id not in busy] if sender else []
        try:
            if waiting:
                delivery.record_accepted(runtime.database, waiting, journal=sender.journal)
            now = runtime.now()
            with runtime.database.unit_of_work() as db:
                store.beat(db, runtime.process_id, role=self.role, hostname=socket.gethostname(), pid=os.getpid(),
                           queues=self.queues, started_at=runtime.started_at, now=now,
                           broker_id=getattr(runtime.broker, "broker_id", None))
                if sender is not None:
                    store.renew_claims(db, sender.holder, sender.in_flight(), now=now,
                                       lease_seconds=runtime.settings.workers.lease_seconds)
            runtime.adopt_orphan_journals()
        except DatabaseUnavailable as error:
            runtime.outage.failed(error, "heartbeat")
            self._delay = min(interval, self._retry) if waiting else interval
            self._retry = min(interval, self._retry * 2)
            return
        except Exception:  # a bug must not stop the heartbeat: the claims would run out
            log.exception("heartbeat failed")
            self._delay = interval
            return
        if waiting:
            log.warning("recorded %s deliveries the smarthost had accepted while the database was unavailable "
                        "(outbox %s)", len(waiting), id_list(e.outbox_id for e in waiting))
        runtime.outage.succeeded()
        self._retry = FIRST_RETRY_SECONDS
        self._delay = interval

    def stop(self) -> None:
        """Last beat (records what it can), then say this process stopped."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.tick()
        try:
            with self.runtime.database.unit_of_work() as db:
                store.mark_stopped(db, self.runtime.process_id, now=self.runtime.now(), reason="stopped")
        except DatabaseUnavailable:
            pass  # its heartbeat simply ages
