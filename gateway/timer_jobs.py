"""Due timers of one case: reminders, escalation and auto-close (see cases/timers.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TimerResult:
    outbox_ids: list[int] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def run_due(db, case_id: int, *, settings, renderer, now) -> TimerResult:
    """Run every timer of `case_id` that is due at `now`."""
    return TimerResult()


def claim_due_cases(db, *, now, lease_seconds: int, limit: int = 500) -> list[int]:
    """Ids of cases whose next timer is due, claimed for `lease_seconds`."""
    from datetime import timedelta

    from sqlalchemy import or_, select, update

    from gateway.models import Case

    query = (
        select(Case.id)
        .where(Case.next_due_at.is_not(None), Case.next_due_at <= now,
               or_(Case.timer_lease_until.is_(None), Case.timer_lease_until <= now))
        .order_by(Case.next_due_at)
        .limit(limit)
    )
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(db.scalars(query))
    if ids:
        db.execute(update(Case).where(Case.id.in_(ids)).values(timer_lease_until=now + timedelta(seconds=lease_seconds)))
    return ids


def run_all_due(runtime) -> list[str]:
    """Claim and run every due case timer now (the `timers run` command); lines of what was done."""
    now = runtime.now()
    with runtime.database.unit_of_work() as db:
        case_ids = claim_due_cases(db, now=now, lease_seconds=runtime.settings.workers.lease_seconds)
    lines: list[str] = []
    for case_id in case_ids:
        with runtime.database.unit_of_work() as db:
            result = run_due(db, case_id, settings=runtime.settings, renderer=runtime.renderer, now=now)
        lines.extend(result.actions)
        for outbox_id in result.outbox_ids:
            runtime.enqueue_delivery(outbox_id)
    return lines
