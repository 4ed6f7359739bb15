"""process_inbound(inbound_id): run the pipeline on one stored message, then deliver.

One attempt is three short steps, so that no database write lock is held while the
message is read (on SQLite every other writer, the SMTP ingress included, waits for it):
count and mark the attempt (committed, with this process's id), read the message (parse,
classify: no transaction), then act on it in one write transaction. A failure of any kind,
the time limit included, is recorded: retried with backoff while [workers]
inbound_max_attempts allow, then quarantined with its error. The database going away is
not the message's fault: the attempt is taken up again when it answers, not counted twice.

Messages over [workers] large_message_bytes are handed to process_large_inbound on the
"large" queue, whose few threads bound the memory they take; every other message is
processed on the "inbound" queue and never waits behind one.
"""

from __future__ import annotations

import logging
import threading
import traceback

import dramatiq
from dramatiq.middleware import Interrupt

from gateway import pipeline
from gateway.db import DatabaseUnavailable

log = logging.getLogger(__name__)
ACTOR_OPTIONS = {"max_retries": 20, "min_backoff": 1000, "max_backoff": 60_000}


def declare(runtime) -> tuple[dramatiq.Actor, dramatiq.Actor]:
    cut_short: set[int] = set()  # attempts of this process that the database interrupted
    lock = threading.Lock()

    def process(inbound_id: int, *, forward_large: bool) -> None:
        settings = runtime.settings
        attempt = None
        try:
            with lock:
                resumed = inbound_id in cut_short
            with runtime.database.connection() as connection:
                attempt = pipeline.begin_attempt(connection, inbound_id, settings=settings, now=runtime.now(),
                                                 holder=runtime.process_id, resumed=resumed)
            with lock:
                cut_short.discard(inbound_id)
            if attempt is None:
                return
            if attempt.exhausted:  # the earlier attempts died (time limit, killed worker)
                _failed(runtime, inbound_id, None)
                return
            if forward_large and runtime.large_messages.is_large(attempt.size) and not runtime.inline:
                _not_started(runtime, inbound_id)  # counted where it runs, on the large queue
                large_actor.send(inbound_id)
                return
            with runtime.large_messages.slot(attempt.size, wait=True):
                prepared = pipeline.prepare(attempt.raw, attempt.mail_from, settings, client=attempt.client,
                                            resolver=runtime.resolver, analyser=runtime.analyser)
                with runtime.database.unit_of_work() as db:
                    result = pipeline.process_inbound(db, inbound_id, settings=settings,
                                                      renderer=runtime.renderer, now=runtime.now(),
                                                      prepared=prepared)
            runtime.outage.succeeded()
        except DatabaseUnavailable as error:
            with lock:
                cut_short.add(inbound_id)
            runtime.outage.failed(error, f"processing inbound {inbound_id}")
            if runtime.inline:  # a one-shot command says so itself
                raise
            raise dramatiq.Retry("database unavailable") from None  # Dramatiq backs off; the sweep if it gives up
        except (Exception, Interrupt):  # a fault, or the time limit: recorded, retried or quarantined
            log.exception("inbound %s: processing attempt %s failed", inbound_id, attempt.number if attempt else "?")
            _failed(runtime, inbound_id, traceback.format_exc())
            return
        for outbox_id in result.outbox_ids:
            runtime.enqueue_delivery(outbox_id)

    def process_inbound(inbound_id: int) -> None:
        process(inbound_id, forward_large=True)

    def process_large_inbound(inbound_id: int) -> None:
        process(inbound_id, forward_large=False)

    time_limit = runtime.settings.workers.processing_time_limit_seconds * 1000
    actor = dramatiq.actor(process_inbound, broker=runtime.broker, actor_name="process_inbound",
                           queue_name="inbound", time_limit=time_limit, **ACTOR_OPTIONS)
    large_actor = dramatiq.actor(process_large_inbound, broker=runtime.broker, actor_name="process_large_inbound",
                                 queue_name="large", time_limit=time_limit, **ACTOR_OPTIONS)
    return actor, large_actor


def _failed(runtime, inbound_id: int, error: str | None) -> None:
    with runtime.database.unit_of_work() as db:
        failed = pipeline.attempt_failed(db, inbound_id, error, settings=runtime.settings,
                                         renderer=runtime.renderer, now=runtime.now())
    if failed.retry_in is not None:
        runtime.enqueue_inbound(inbound_id, delay_ms=int(failed.retry_in.total_seconds() * 1000))
    for outbox_id in failed.outbox_ids:
        runtime.enqueue_delivery(outbox_id)


def _not_started(runtime, inbound_id: int) -> None:
    """An attempt handed on before any work (a large message, to its own queue): it does not count."""
    with runtime.database.unit_of_work() as db:
        pipeline.attempt_not_started(db, inbound_id)
