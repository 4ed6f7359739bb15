"""deliver(outbox_id): one attempt; 4xx and timeouts are retried with backoff, a 5xx is a hard bounce.

Deliveries run on the "outbound" queue with their own threads, so a smarthost that hangs
holds up deliveries only, never inbound processing; messages over large_message_bytes go
to deliver_large on the "large" queue."""

from __future__ import annotations

import dramatiq
from sqlalchemy import func, select

from gateway import delivery, webhooks
from gateway.db import DatabaseUnavailable
from gateway.casework import delivery_reports
from gateway.models import Outbox
from workers.inbound import ACTOR_OPTIONS


def declare(runtime) -> tuple[dramatiq.Actor, dramatiq.Actor]:
    def attempt(outbox_id: int, *, forward_large: bool) -> None:
        try:
            with runtime.database.unit_of_work() as db:
                size, kind = db.execute(select(func.length(Outbox.raw), Outbox.kind)
                                        .where(Outbox.id == outbox_id)).one_or_none() or (0, None)
                size = size or 0
            if forward_large and runtime.large_messages.is_large(size) and not runtime.inline:
                large_actor.send(outbox_id)
                return
            sender = runtime.sender()  # a restarted process records what stopped ones left first
            with runtime.large_messages.slot(size, wait=True):
                webhook = kind == webhooks.OUTBOX_KIND  # an HTTP delivery: no bounce handling
                result, new_ids = delivery.deliver(
                    runtime.database, outbox_id, transport=runtime.webhook_sender if webhook else runtime.transport,
                    settings=runtime.settings, clock=runtime.now, sender=sender,
                    on_permanent_failure=None if webhook else lambda db, row, *, error, now: delivery_reports.on_smtp_rejection(
                        db, row, error=error, now=now, settings=runtime.settings, renderer=runtime.renderer),
                )
            runtime.outage.succeeded()
        except DatabaseUnavailable as error:
            runtime.outage.failed(error, f"delivering outbox {outbox_id}")
            if runtime.inline:  # a one-shot command says so itself
                raise
            raise dramatiq.Retry("database unavailable") from None  # Dramatiq backs off; the sweep if it gives up
        if result.result == "retry" and result.retry_at is not None:
            delay = max(0, int((result.retry_at - runtime.now()).total_seconds() * 1000))
            runtime.enqueue_delivery(outbox_id, delay_ms=delay)
        for new_id in new_ids:
            runtime.enqueue_delivery(new_id)

    def deliver(outbox_id: int) -> None:
        attempt(outbox_id, forward_large=True)

    def deliver_large(outbox_id: int) -> None:
        attempt(outbox_id, forward_large=False)

    actor = dramatiq.actor(deliver, broker=runtime.broker, actor_name="deliver", queue_name="outbound",
                           **ACTOR_OPTIONS)
    large_actor = dramatiq.actor(deliver_large, broker=runtime.broker, actor_name="deliver_large",
                                 queue_name="large", **ACTOR_OPTIONS)
    return actor, large_actor
