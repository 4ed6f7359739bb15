"""run_timer(case_id): run what is due on one case (reminders, escalation, auto-close)."""

from __future__ import annotations

import dramatiq

from gateway.casework import due_timers
from gateway.db import DatabaseUnavailable
from workers.inbound import ACTOR_OPTIONS


def declare(runtime) -> dramatiq.Actor:
    def run_timer(case_id: int) -> None:
        try:
            with runtime.database.unit_of_work() as db:
                result = due_timers.run_due(db, case_id, settings=runtime.settings, renderer=runtime.renderer,
                                            now=runtime.now())
            runtime.outage.succeeded()
        except DatabaseUnavailable as error:
            runtime.outage.failed(error, f"case {case_id} timers")
            if runtime.inline:  # a one-shot command says so itself
                raise
            raise dramatiq.Retry("database unavailable") from None
        for outbox_id in result.outbox_ids:
            runtime.enqueue_delivery(outbox_id)

    return dramatiq.actor(run_timer, broker=runtime.broker, actor_name="run_timer", queue_name="timers",
                          **ACTOR_OPTIONS)
