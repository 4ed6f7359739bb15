"""run_timer(case_id): run what is due on one case (reminders, escalation, auto-close)."""

from __future__ import annotations

import dramatiq

from gateway import timer_jobs


def declare(runtime) -> dramatiq.Actor:
    def run_timer(case_id: int) -> None:
        with runtime.database.unit_of_work() as db:
            result = timer_jobs.run_due(db, case_id, settings=runtime.settings, renderer=runtime.renderer,
                                        now=runtime.now())
        for outbox_id in result.outbox_ids:
            runtime.enqueue_delivery(outbox_id)

    return dramatiq.actor(run_timer, broker=runtime.broker, actor_name="run_timer", queue_name="timers",
                          max_retries=20, min_backoff=1000, max_backoff=60_000)
