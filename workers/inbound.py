"""process_inbound(inbound_id): run the pipeline on one stored message, then deliver."""

from __future__ import annotations

import logging
import traceback

import dramatiq
from sqlalchemy import select

from gateway import pipeline
from gateway.db import DatabaseUnavailable
from gateway.models import Inbound
from workers.large_messages import RETRY_DELAY_MS

log = logging.getLogger(__name__)


def declare(runtime) -> dramatiq.Actor:
    def process_inbound(inbound_id: int) -> None:
        settings = runtime.settings
        try:
            with runtime.database.unit_of_work() as db:
                size = db.scalar(select(Inbound.size).where(Inbound.id == inbound_id)) or 0
                # A worker thread never waits for a slot (it would hold this transaction, and on
                # SQLite every other writer with it): turned away, the message is queued again.
                # Only a one-shot command, alone in its thread, waits.
                with runtime.large_messages.slot(size, wait=runtime.inline) as admitted:
                    if admitted:
                        result = pipeline.process_inbound(db, inbound_id, settings=settings,
                                                          renderer=runtime.renderer, now=runtime.now())
            if not admitted:
                runtime.enqueue_inbound(inbound_id, delay_ms=RETRY_DELAY_MS)
                return
            outbox_ids = result.outbox_ids
        except DatabaseUnavailable:
            raise  # Dramatiq retries; the sweep re-enqueues if the retries run out
        except Exception:  # a fault in processing: quarantine, keep the raw bytes, tell staff
            error = traceback.format_exc()
            log.exception("inbound %s failed; quarantined", inbound_id)
            with runtime.database.unit_of_work() as db:
                outbox_ids = pipeline.quarantine(db, inbound_id, error, settings=settings,
                                                 renderer=runtime.renderer, now=runtime.now())
        for outbox_id in outbox_ids:
            runtime.enqueue_delivery(outbox_id)

    return dramatiq.actor(process_inbound, broker=runtime.broker, actor_name="process_inbound",
                          queue_name="inbound", max_retries=20, min_backoff=1000, max_backoff=60_000)
