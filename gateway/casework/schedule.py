"""When a case's timers fall: the business calendar of `[timers]`, the case as the timer
rules see it (gateway/cases/timers.py), and the stored next due time (the scheduler's index)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway import __version__, rights, store
from gateway.cases import timers
from gateway.casework import record
from gateway.clock import BusinessCalendar
from gateway.config import Settings
from gateway.db import Database
from gateway.models import Case, TimerSend


def calendar_for(settings: Settings) -> BusinessCalendar:
    """The business calendar of `[timers]`, built once per process (building the holiday
    table costs a few milliseconds, and every processed message reschedules its case)."""
    return _calendar(settings.timers.timezone, settings.timers.country)


@lru_cache(maxsize=8)
def _calendar(timezone_name: str, country: str) -> BusinessCalendar:
    return BusinessCalendar(timezone_name, country)


_DONE_TIMERS = select(TimerSend.kind, TimerSend.period, TimerSend.sequence).where(TimerSend.case_id == bindparam("case_id"))


def view_of(db: Session, case: Case) -> timers.TimerView:
    # timers are recorded with a flush of their own (due_timers._mark): the unit's other
    # pending changes need not be written for this read
    with db.no_autoflush:
        done = frozenset(db.execute(_DONE_TIMERS, {"case_id": case.id}).all())
    return timers.TimerView(
        state=case.state, category=case.category, dispute_type=case.dispute_type, escalated=case.escalated,
        merchant_unreachable=case.merchant_unreachable, opened_at=case.opened_at, waiting_since=case.waiting_since,
        transaction_date=case.transaction_date or case.opened_at,
        last_customer_message_at=case.last_customer_message_at, last_staff_message_at=case.last_staff_message_at,
        merchant_asked_at=case.merchant_asked_at,
        last_merchant_message_at=case.last_merchant_message_at, done=frozenset(tuple(row) for row in done),
    )


def timer_kwargs(settings: Settings, calendar: BusinessCalendar) -> dict:
    return {"calendar": calendar, "settings": settings.timers, "card_window_types": rights.CARD_WINDOW_TYPES}


def reschedule(db: Session, case: Case, settings: Settings, calendar: BusinessCalendar | None = None) -> None:
    """Store the case's next due time (the scheduler's index)."""
    calendar = calendar or calendar_for(settings)
    record.set_next_due(case, timers.next_due_at(view_of(db, case), **timer_kwargs(settings, calendar)))


def reschedule_open_cases(database: Database, settings: Settings, *, batch_size: int = 500) -> int:
    """Recompute every open case's next due time with the running code and `[timers]`.

    A case's `next_due_at` is otherwise recomputed only when something happens to it, so
    after an upgrade that adds a timer, or a change of the configured delays, cases opened
    before would wait with the old time. Schedulers do this when they start; rows a worker
    holds are skipped (the worker reschedules them itself). Returns how many changed."""
    calendar = calendar_for(settings)
    changed, last_id = 0, 0
    while True:
        with database.unit_of_work() as db:
            query = (select(Case).where(Case.state != "closed", Case.id > last_id).order_by(Case.id)
                     .limit(batch_size))
            if db.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            cases = list(db.scalars(query))
            if not cases:
                return changed
            for case in cases:
                before = case.next_due_at
                reschedule(db, case, settings, calendar)
                changed += before != case.next_due_at
            last_id = cases[-1].id


def timers_fingerprint(settings: Settings) -> str:
    """What due times are computed with: the timer rules' own code (gateway/cases/timers.py,
    gateway/rights.py, so any change to them counts), this release and `[timers]`."""
    digest = hashlib.sha256(f"{__version__}|{settings.timers!r}".encode())
    for module in (timers, rights):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def reschedule_if_changed(database: Database, settings: Settings, *, now) -> int | None:
    """`reschedule_open_cases` unless the open cases were last rescheduled with the same
    release and `[timers]` (None: skipped). Every change to a case reschedules it anyway."""
    fingerprint = timers_fingerprint(settings)
    with database.unit_of_work() as db:
        if store.timers_fingerprint(db) == fingerprint:
            return None
    changed = reschedule_open_cases(database, settings)
    with database.unit_of_work() as db:
        store.record_timers_fingerprint(db, fingerprint, now=now)
    return changed


def upcoming(db: Session, case: Case, settings: Settings) -> list[dict]:
    """The timers still to come for a case, in time order (for `cases show`)."""
    calendar = calendar_for(settings)
    return [{"kind": t.kind, "sequence": t.sequence, "at": t.at.isoformat(),
             "local": calendar.local(t.at).strftime("%Y-%m-%d %H:%M %Z")}
            for t in timers.scheduled(view_of(db, case), **timer_kwargs(settings, calendar))]
