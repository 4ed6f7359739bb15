"""process_inbound(inbound_id): run the pipeline on one stored message, then deliver.

One attempt is three short steps, so that no database write lock is held while the
message is read (on SQLite every other writer, the SMTP ingress included, waits for it):
count and mark the attempt (committed), read the message (parse, classify: no
transaction), then act on it in one write transaction. A failure of any kind, the time
limit included, is recorded: retried with backoff while [workers] inbound_max_attempts
allow, then quarantined with its error.
"""

from __future__ import annotations

import logging
import traceback

import dramatiq
from dramatiq.middleware import Interrupt

from gateway import pipeline
from gateway.db import DatabaseUnavailable
from workers.large_messages import RETRY_DELAY_MS

log = logging.getLogger(__name__)


def declare(runtime) -> dramatiq.Actor:
    def process_inbound(inbound_id: int) -> None:
        settings = runtime.settings
        with runtime.database.unit_of_work() as db:
            attempt = pipeline.begin_attempt(db, inbound_id, settings=settings, now=runtime.now())
        if attempt is None:
            return
        if attempt.exhausted:  # the earlier attempts died (time limit, killed worker)
            _failed(runtime, inbound_id, None)
            return
        try:
            # A worker thread never waits for a slot: turned away, the message is queued again.
            # Only a one-shot command, alone in its thread, waits.
            with runtime.large_messages.slot(attempt.size, wait=runtime.inline) as admitted:
                if admitted:
                    prepared = pipeline.prepare(attempt.raw, attempt.mail_from, settings, client=attempt.client,
                                                resolver=runtime.resolver)
                    with runtime.database.unit_of_work() as db:
                        result = pipeline.process_inbound(db, inbound_id, settings=settings,
                                                          renderer=runtime.renderer, now=runtime.now(),
                                                          prepared=prepared)
            if not admitted:
                _not_started(runtime, inbound_id)
                runtime.enqueue_inbound(inbound_id, delay_ms=RETRY_DELAY_MS)
                return
        except DatabaseUnavailable:
            raise  # not the message's fault: Dramatiq retries; the sweep re-enqueues if the retries run out
        except (Exception, Interrupt):  # a fault, or the time limit: recorded, retried or quarantined
            log.exception("inbound %s: processing attempt %s failed", inbound_id, attempt.number)
            _failed(runtime, inbound_id, traceback.format_exc())
            return
        for outbox_id in result.outbox_ids:
            runtime.enqueue_delivery(outbox_id)

    return dramatiq.actor(process_inbound, broker=runtime.broker, actor_name="process_inbound",
                          queue_name="inbound", max_retries=20, min_backoff=1000, max_backoff=60_000,
                          time_limit=runtime.settings.workers.processing_time_limit_seconds * 1000)


def _failed(runtime, inbound_id: int, error: str | None) -> None:
    with runtime.database.unit_of_work() as db:
        failed = pipeline.attempt_failed(db, inbound_id, error, settings=runtime.settings,
                                         renderer=runtime.renderer, now=runtime.now())
    if failed.retry_in is not None:
        runtime.enqueue_inbound(inbound_id, delay_ms=int(failed.retry_in.total_seconds() * 1000))
    for outbox_id in failed.outbox_ids:
        runtime.enqueue_delivery(outbox_id)


def _not_started(runtime, inbound_id: int) -> None:
    """A large message turned away before any work: the attempt does not count."""
    with runtime.database.unit_of_work() as db:
        pipeline.attempt_not_started(db, inbound_id)
