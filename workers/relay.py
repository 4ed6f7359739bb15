"""deliver(outbox_id): one attempt; 4xx and timeouts are retried with backoff, a 5xx is a hard bounce."""

from __future__ import annotations

import dramatiq
from sqlalchemy import func, select

from gateway import delivery
from gateway.flows import bounces
from gateway.models import Outbox
from workers.large_messages import RETRY_DELAY_MS


def declare(runtime) -> dramatiq.Actor:
    def deliver(outbox_id: int) -> None:
        # the slot is taken before the row is claimed, so a claimed row is sent at once and
        # its lease never runs out while it waits
        with runtime.database.unit_of_work() as db:
            size = db.scalar(select(func.length(Outbox.raw)).where(Outbox.id == outbox_id)) or 0
        with runtime.large_messages.slot(size, wait=runtime.inline) as admitted:
            if not admitted:
                runtime.enqueue_delivery(outbox_id, delay_ms=RETRY_DELAY_MS)
                return
            attempt, new_ids = delivery.deliver(
                runtime.database, outbox_id, relay=runtime.relay, settings=runtime.settings, clock=runtime.now,
                on_permanent_failure=lambda db, row, *, error, now: bounces.on_smtp_rejection(
                    db, row, error=error, now=now, settings=runtime.settings, renderer=runtime.renderer),
            )
        if attempt.result == "retry" and attempt.retry_at is not None:
            delay = max(0, int((attempt.retry_at - runtime.now()).total_seconds() * 1000))
            runtime.enqueue_delivery(outbox_id, delay_ms=delay)
        for new_id in new_ids:
            runtime.enqueue_delivery(new_id)

    return dramatiq.actor(deliver, broker=runtime.broker, actor_name="deliver", queue_name="outbound",
                          max_retries=20, min_backoff=1000, max_backoff=60_000)
