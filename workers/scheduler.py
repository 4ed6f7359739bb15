"""The scheduler: find lost work and claim due case timers.

Each pass (every [workers] sweep_interval_seconds):
1. journals of this host's stopped processes are recorded, and what they were sending
   goes back for one delayed retry;
2. messages fetched by workers whose broker heartbeat stopped go back on their queues
   (Dramatiq's maintenance, run at once);
3. rows waiting for a job the broker no longer has (Redis flushed or restarted, retries
   given up) are enqueued again, `LOST_JOB_GRACE_SECONDS` after they were due;
4. rows whose lease ran out: queued or pending ones (the only repair with the in-memory
   broker, which cannot be asked about its jobs; a safety net under Redis's word), and
   'sending' ones whose sender stopped renewing its claim (one retry after [outbound]
   uncertain_retry_seconds: it may have been sent);
5. due case timers are claimed and enqueued; the digests of quarantined and held mail go to
   staff when due.

Safe to run several at once: rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL
(SQLite serialises writers) and every job is idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from gateway import quarantine, store
from gateway.db import DatabaseUnavailable
from gateway.metrics import LOST_JOBS
from gateway.outage import id_list
from gateway.models import Case, Inbound, Outbox
from workers import broker as broker_tools
from gateway.casework import holding, schedule
from gateway.casework.work import Work
from gateway.outbox.mailer import Mailer

log = logging.getLogger(__name__)

# A row younger than this may be committed with its job not sent yet (the job follows the
# commit): not taken for lost. A job sent twice is harmless (claims), only wasted.
LOST_JOB_GRACE_SECONDS = 5
FORGET_PROCESSES_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class SweepReport:
    inbound: int
    outbox: int
    timers: int
    lost: int = 0
    abandoned: int = 0


@dataclass(frozen=True)
class LostJobs:
    inbound: list[int]
    outbox: list[int]
    timers: list[int]

    @property
    def count(self) -> int:
        return len(self.inbound) + len(self.outbox) + len(self.timers)


def sweep(runtime) -> SweepReport:
    """One pass (see the module docstring); raises DatabaseUnavailable when it cannot run."""
    settings = runtime.settings
    now = runtime.now()
    lease = settings.workers.lease_seconds
    runtime.sender()  # opens this process's journal and records the stopped ones' first
    with runtime.database.unit_of_work() as db:
        store.beat(db, f"{runtime.process_id}-scheduler", role="scheduler", hostname=socket.gethostname(),
                   pid=os.getpid(), queues=[], started_at=runtime.started_at, now=now)
        store.forget_processes(db, before=now - FORGET_PROCESSES_AFTER)
        store.forget_idempotency_keys(db, before=now - timedelta(hours=settings.http.idempotency_hours))
    live, reason, broker_up = _broker_view(runtime)
    if not broker_up:  # nothing can be enqueued: the next pass repairs what this one would have
        return SweepReport(0, 0, 0)
    retry_at = now + timedelta(seconds=settings.outbound.uncertain_retry_seconds)
    with runtime.database.unit_of_work() as db:
        lost = _lost_jobs(db, runtime, live, now)
        # the safety net under the broker's word: a job a whole lease late is sent again
        inbound_ids = [i for i in store.stuck_inbound_ids(db, now=now, lease_seconds=lease) if i not in lost.inbound]
        outbox_ids = [o for o in store.stuck_outbox_ids(db, now=now, lease_seconds=lease) if o not in lost.outbox]
        abandoned = store.abandoned_outbox_ids(db, now=now, lease_seconds=lease, retry_at=retry_at)
    with runtime.database.unit_of_work() as db:
        case_ids = store.claim_due_cases(db, now=now, lease_seconds=lease)
    runtime.outage.succeeded()
    if lost.count:
        log.warning("sweep: %s jobs were missing from the broker%s: enqueued again inbound %s, outbox %s, "
                    "case timers %s", lost.count, f" ({reason})" if reason else "", id_list(lost.inbound),
                    id_list(lost.outbox), id_list(lost.timers))
        for kind, ids in (("inbound", lost.inbound), ("outbox", lost.outbox), ("timers", lost.timers)):
            if ids:
                LOST_JOBS.labels(kind).inc(len(ids))
    if inbound_ids or outbox_ids:
        log.warning("sweep: leases ran out without the work being done: enqueued again inbound %s, outbox %s",
                    id_list(inbound_ids), id_list(outbox_ids))
    if abandoned:
        log.warning("sweep: %s deliveries were left 'sending' by a process that stopped renewing its claim (%s); "
                    "the smarthost may have them: one retry each at %s (outbox %s)", len(abandoned),
                    ", ".join(sorted({holder or "?" for _, holder in abandoned})), retry_at.isoformat(),
                    id_list(i for i, _ in abandoned))
    with runtime.database.unit_of_work() as db:
        digest_ids = quarantine.send_digest(db, settings=settings, renderer=runtime.renderer, now=now)
    with runtime.database.unit_of_work() as db:
        mailer = Mailer(db=db, settings=settings, renderer=runtime.renderer, now=now)
        digest_ids += holding.send_digests(Work(db=db, settings=settings, mailer=mailer, now=now))
    for outbox_id in digest_ids:
        runtime.enqueue_delivery(outbox_id)
    for inbound_id in [*lost.inbound, *inbound_ids]:
        runtime.enqueue_inbound(inbound_id)
    for outbox_id in [*lost.outbox, *outbox_ids]:
        runtime.enqueue_delivery(outbox_id)
    for outbox_id, _ in abandoned:
        runtime.enqueue_delivery(outbox_id, delay_ms=settings.outbound.uncertain_retry_seconds * 1000)
    for case_id in [*lost.timers, *case_ids]:
        runtime.enqueue_timer(case_id)
    if case_ids:
        log.info("sweep: %s case timers due", len(case_ids))
    return SweepReport(len(lost.inbound) + len(inbound_ids), len(lost.outbox) + len(outbox_ids),
                       len(case_ids) + len(lost.timers), lost.count, len(abandoned))


def _broker_view(runtime) -> tuple[set | None, str | None, bool]:
    """The jobs the broker holds (None: it cannot tell), why it may have lost some, and
    whether it answers at all."""
    broker = runtime.broker
    try:
        broker_tools.recover_dead_consumers(broker)
        reason = broker_tools.loss_reason(broker, runtime.broker_memory)
        live = broker_tools.live_jobs(broker)
    except Exception as error:  # redis raises its own connection errors
        runtime.broker_outage.failed(error, "scheduler sweep")
        return None, None, False
    runtime.broker_outage.succeeded()
    if live is None and not broker_tools.is_redis(broker) and not runtime.broker_memory.get("recovered"):
        # The in-memory broker: everything queued before this process started died with the
        # process that held it. Once, at start, it is all enqueued again.
        runtime.broker_memory["recovered"] = True
        return set(), "the in-memory queue of the previous run was lost with it", True
    return live, reason, True


def _lost_jobs(db, runtime, live: set | None, now) -> LostJobs:
    if live is None:
        return LostJobs([], [], [])
    before = now - timedelta(seconds=LOST_JOB_GRACE_SECONDS)
    if not broker_tools.is_redis(runtime.broker):
        before = min(before, runtime.started_at)  # only what the previous run left
    lease = runtime.settings.workers.lease_seconds
    running = now - timedelta(seconds=runtime.settings.workers.processing_time_limit_seconds + 30)
    inbound = [i for i in store.waiting_inbound_ids(db, received_before=before, started_before=running)
               if ("process_inbound", i) not in live and ("process_large_inbound", i) not in live]
    outbox = [o for o in store.waiting_outbox_ids(db, due_before=before)
              if ("deliver", o) not in live and ("deliver_large", o) not in live]
    timers = [c for c in store.claimed_timer_case_ids(db, now=now, claimed_before=before, lease_seconds=lease)
              if ("run_timer", c) not in live]
    until = now + timedelta(seconds=lease)
    store.renew_leases(db, Inbound, inbound, lease_column="lease_until", until=until)
    store.renew_leases(db, Outbox, outbox, lease_column="lease_until", until=until)
    store.renew_leases(db, Case, timers, lease_column="timer_lease_until", until=until)
    return LostJobs(inbound, outbox, timers)


def reschedule(runtime) -> bool:
    """Recompute the open cases' due times at process start when an upgrade or a change of
    [timers] may have moved them (not when they were computed with the same); True once done."""
    changed = schedule.reschedule_if_changed(runtime.database, runtime.settings, now=runtime.now())
    if changed:
        log.info("rescheduled %s open case(s) with the current [timers]", changed)
    return True


def run_forever(runtime, stop: threading.Event) -> None:
    """Sweep every `workers.sweep_interval_seconds` until `stop` is set."""
    interval = runtime.settings.workers.sweep_interval_seconds
    rescheduled = False
    while not stop.is_set():
        try:
            if not rescheduled:
                rescheduled = reschedule(runtime)
            sweep(runtime)
        except DatabaseUnavailable as error:  # one line per outage; the next pass tries again
            runtime.outage.failed(error, "scheduler sweep")
        except Exception:  # a bug in one pass must not stop the scheduler
            log.exception("scheduler sweep failed")
        stop.wait(interval)
