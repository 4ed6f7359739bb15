"""The scheduler: re-enqueue work whose queue message was lost, and claim due case timers.

Safe to run several at once: rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL
(SQLite serialises writers) and every job is idempotent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from gateway import quarantine, store, timer_jobs
from gateway.flows import holding
from gateway.flows.step import Work
from gateway.outgoing import Mailer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    inbound: int
    outbox: int
    timers: int


def sweep(runtime) -> SweepReport:
    """One pass: stuck inbound and outbox rows, due case timers, and the digests of
    quarantined and held mail."""
    settings = runtime.settings
    now = runtime.now()
    lease = settings.workers.lease_seconds
    with runtime.database.unit_of_work() as db:
        inbound_ids = store.stuck_inbound_ids(db, now=now, lease_seconds=lease)
        outbox_ids = store.stuck_outbox_ids(db, now=now, lease_seconds=lease)
    with runtime.database.unit_of_work() as db:
        case_ids = timer_jobs.claim_due_cases(db, now=now, lease_seconds=lease)
    with runtime.database.unit_of_work() as db:
        digest_ids = quarantine.send_digest(db, settings=settings, renderer=runtime.renderer, now=now)
    with runtime.database.unit_of_work() as db:
        mailer = Mailer(db=db, settings=settings, renderer=runtime.renderer, now=now)
        digest_ids += holding.send_digests(Work(db=db, settings=settings, mailer=mailer, now=now))
    for outbox_id in digest_ids:
        runtime.enqueue_delivery(outbox_id)
    for inbound_id in inbound_ids:
        runtime.enqueue_inbound(inbound_id)
    for outbox_id in outbox_ids:
        runtime.enqueue_delivery(outbox_id)
    for case_id in case_ids:
        runtime.enqueue_timer(case_id)
    if inbound_ids or outbox_ids or case_ids:
        log.info("sweep: re-enqueued %s inbound, %s outbox; %s case timers due",
                 len(inbound_ids), len(outbox_ids), len(case_ids))
    return SweepReport(len(inbound_ids), len(outbox_ids), len(case_ids))


def reschedule(runtime) -> bool:
    """Recompute the open cases' due times once per process start (an upgrade may have
    added timers, or [timers] changed); True once done."""
    changed = timer_jobs.reschedule_open_cases(runtime)
    if changed:
        log.info("rescheduled %s open case(s) with the current [timers]", changed)
    return True


def run_forever(runtime, stop: threading.Event) -> None:
    """Sweep every `workers.sweep_interval_seconds` until `stop` is set."""
    interval = runtime.settings.workers.sweep_interval_seconds
    rescheduled = False
    while not stop.is_set():
        if not rescheduled:
            try:
                rescheduled = reschedule(runtime)
            except Exception:  # the database briefly down: tried again at the next pass
                log.exception("rescheduling open cases failed")
        try:
            sweep(runtime)
        except Exception:  # a failed pass (database briefly down) is retried at the next interval
            log.exception("scheduler sweep failed")
        stop.wait(interval)
