"""deliver(outbox_id): one attempt; 4xx and timeouts are retried with backoff, a 5xx is a hard bounce.

Deliveries run on the "outbound" queue with their own threads, so a smarthost that hangs
holds up deliveries only, never inbound processing; messages over large_message_bytes go
to deliver_large on the "large" queue."""

from __future__ import annotations

import dramatiq
from gateway import delivery, store, webhooks
from gateway.db import DatabaseUnavailable
from gateway.casework import delivery_reports
from workers.inbound import ACTOR_OPTIONS


def declare(runtime) -> tuple[dramatiq.Actor, dramatiq.Actor]:
    def rejected(db, row, *, error, now) -> list[int]:
        return delivery_reports.on_smtp_rejection(db, row, error=error, now=now, settings=runtime.settings,
                                                  renderer=runtime.renderer)

    def route(kind: str) -> delivery.Route:
        if kind == webhooks.OUTBOX_KIND:  # an HTTP delivery: no bounce handling
            return delivery.Route(runtime.webhook_sender)
        return delivery.Route(runtime.transport, rejected)

    def attempt(outbox_id: int, *, forward_large: bool) -> None:
        gate = runtime.large_messages
        try:
            sender = runtime.sender()  # a restarted process records what stopped ones left first
            if forward_large and not runtime.inline:
                # claimed at once unless large (then handed to the large queue): no read before
                result, new_ids = delivery.deliver(runtime.database, outbox_id, route=route, settings=runtime.settings,
                                                   clock=runtime.now, sender=sender, below_bytes=gate.threshold_bytes)
                if result.result == "large":
                    large_actor.send(outbox_id)
                    return
            else:  # the large queue, or a one-shot command: the message's size takes its memory slot first
                with runtime.database.connection() as connection:
                    size = store.outbox_size(connection, outbox_id)
                with gate.slot(size, wait=True):
                    result, new_ids = delivery.deliver(runtime.database, outbox_id, route=route,
                                                       settings=runtime.settings, clock=runtime.now, sender=sender)
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
