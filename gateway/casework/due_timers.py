"""Running due timers: claim due cases through the indexed `next_due_at`, then for each
case run what is due (reminders, escalation, warnings, auto-close) exactly once.

Each run is recorded in `timer_sends` under a unique (case, kind, period, sequence)
before its mail is composed, in the same transaction, so a second scheduler or a retried
job can never send a reminder twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import store
from gateway.cases import timers
from gateway.cases.machine import EventKind
from gateway.casework import history, lifecycle, record
from gateway.casework.schedule import timer_kwargs, calendar_for, reschedule, view_of
from gateway.casework.work import Work
from gateway.clock import BusinessCalendar
from gateway.config import Settings
from gateway.db import Database
from gateway.mail.templating import Renderer
from gateway.models import Case, TimerSend
from gateway.notices import Notice
from gateway.outbox.mailer import Mailer


@dataclass
class TimerResult:
    outbox_ids: list[int] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def _mark(db: Session, case: Case, timer: timers.Timer, outcome: str, now: datetime) -> bool:
    """Record the timer once; False when it was recorded already (another scheduler ran it)."""
    try:
        with db.begin_nested():
            db.add(TimerSend(case_id=case.id, kind=timer.kind, period=timer.period, sequence=timer.sequence,
                             outcome=outcome, at=now))
            db.flush()
        return True
    except IntegrityError:
        return False


def run_due(db: Session, case_id: int, *, settings: Settings, renderer: Renderer, now: datetime) -> TimerResult:
    """Run every timer of `case_id` that is due at `now`; idempotent."""
    result = TimerResult()
    case = store.case_by_id(db, case_id, lock=True)
    if case is None:
        return result
    calendar = calendar_for(settings)
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    work = Work(db=db, settings=settings, mailer=mailer, now=now)
    run, skip = timers.due(view_of(db, case), now, **timer_kwargs(settings, calendar))
    for timer in skip:
        _mark(db, case, timer, "skipped", now)
    for timer in run:
        if not _mark(db, case, timer, "done", now):
            continue
        description = _perform(work, case, timer, calendar)
        record.note(work, case, EventKind.timer(timer.kind), sequence=timer.sequence, due_at=timer.at.isoformat())
        result.actions.append(f"case {case.reference.upper()}: {description} (due {timer.at.isoformat(timespec='minutes')})")
    record.timers_released(case)
    reschedule(db, case, settings, calendar)
    result.outbox_ids.extend(mailer.outbox_ids)
    return result


def _merchant_reminder(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    settings = work.settings.timers
    escalation_date = calendar.add_business_days(case.waiting_since, settings.escalation_business_days)
    extra = {"reminder": {"sequence": timer.sequence, "final": timer.sequence == len(settings.merchant_reminder_business_days),
                          "escalation_date": escalation_date}}
    extra.update(lifecycle.rights_context(work, case, escalation_date=escalation_date))
    work.mailer.notice(Notice.MERCHANT_REMINDER, case, "m", extra)
    return f"merchant reminder {timer.sequence} sent"


def _escalation(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    lifecycle.escalate(work, case, reason="merchant_silent", party=None)
    return "escalated to staff: no answer from the merchant"


def _staff_reminder(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    work.mailer.notice(Notice.STAFF_REMINDER, case, "s", {"reminder": {"sequence": timer.sequence}})
    return f"staff reminder {timer.sequence} sent (payment case without a staff answer)"


def _staff_followup(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    extra = {"reminder": {"sequence": timer.sequence, "since": case.waiting_since,
                          "reason": history.escalation_reason(work, case),
                          "merchant": history.merchant_told_of_escalation(work, case)}}
    work.mailer.notice(Notice.STAFF_FOLLOWUP, case, "s", extra)
    return f"staff reminder {timer.sequence} sent (case with staff, no staff message since {case.waiting_since.date()})"


def _staff_request_reminder(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    if not lifecycle.merchant_reachable(work, case):
        return "no staff-request reminder: the merchant's address is marked invalid"
    work.mailer.notice(Notice.STAFF_REQUEST_REMINDER, case, "m",
                       {"reminder": {"sequence": timer.sequence, "asked_at": case.merchant_asked_at}})
    return f"merchant reminded (staff wrote on {case.merchant_asked_at.date()} and wait for an answer)"


def _payment_answer_due(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    settings = work.settings.timers
    due, latest = timers.payment_answer_deadlines(view_of(work.db, case), calendar, settings)
    work.mailer.notice(Notice.STAFF_PAYMENT_DEADLINE, case, "s", {"deadline": {
        "sequence": timer.sequence, "due": due, "latest": latest,
        "business_days": settings.payment_answer_business_days,
        "max_business_days": settings.payment_answer_max_business_days}})
    which = "written answer" if timer.sequence == 1 else "latest answer after a holding reply"
    return f"staff warned: {which} due by {(due if timer.sequence == 1 else latest).date()}"


def _customer_reminder(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    work.mailer.notice(Notice.CUSTOMER_REMINDER, case, "c", {"reminder": {"sequence": timer.sequence}})
    return f"customer reminder {timer.sequence} sent"


def _card_window(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    tx_date = case.transaction_date or case.opened_at
    work.mailer.notice(Notice.CARD_WINDOW_WARNING, case, "c",
                       {"window": {"closes_around": tx_date + timedelta(days=timers.CARD_WINDOW_CLOSES_DAYS)}})
    return "card-dispute window warning sent to the customer"


def _preclose(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    extra = {"preclose": {"close_at": timers.autoclose_at(view_of(work.db, case), work.settings.timers)}}
    work.mailer.notice(Notice.PRECLOSE_NOTICE, case, "c", extra)
    if lifecycle.merchant_reachable(work, case) and history.merchant_involved(work, case):
        work.mailer.notice(Notice.PRECLOSE_NOTICE, case, "m", extra)
    return "pre-close notice sent"


def _category_reminder(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    work.mailer.notice(Notice.ASK_CATEGORY, case, "c", {"reminder": {"sequence": timer.sequence}})
    return f"customer asked again (reminder {timer.sequence}): payment or delivery?"


def _category_escalation(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    lifecycle.escalate(work, case, reason="category_unknown", party=None)
    return "escalated to staff: the customer never said payment or delivery"


def _autoclose(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    lifecycle.close(work, case, EventKind.EXPIRED, party=None)
    return "closed: 180 days after the transaction without a new request"


# What each kind of timer does when it is due (gateway/cases/timers.py says when); each
# returns the line `timers run` prints.
ACTIONS: dict[str, Callable[[Work, Case, timers.Timer, BusinessCalendar], str]] = {
    timers.MERCHANT_REMINDER: _merchant_reminder,
    timers.ESCALATION: _escalation,
    timers.STAFF_REMINDER: _staff_reminder,
    timers.STAFF_FOLLOWUP: _staff_followup,
    timers.STAFF_REQUEST_REMINDER: _staff_request_reminder,
    timers.PAYMENT_ANSWER_DUE: _payment_answer_due,
    timers.CUSTOMER_REMINDER: _customer_reminder,
    timers.CARD_WINDOW: _card_window,
    timers.PRECLOSE: _preclose,
    timers.CATEGORY_REMINDER: _category_reminder,
    timers.CATEGORY_ESCALATION: _category_escalation,
    timers.AUTOCLOSE: _autoclose,
}


def _perform(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    action = ACTIONS.get(timer.kind)
    if action is None:
        raise ValueError(f"unknown timer kind {timer.kind}")
    return action(work, case, timer, calendar)


def run_all_due(database: Database, *, settings: Settings, renderer: Renderer, now: datetime,
                enqueue_delivery: Callable[[int], None]) -> list[str]:
    """Claim and run every due case timer at `now` (the `timers run` command); lines of what was done."""
    lines: list[str] = []
    last_id = 0
    while True:
        with database.unit_of_work() as db:
            case_ids = store.claim_due_cases(db, now=now, lease_seconds=settings.workers.lease_seconds,
                                       after_id=last_id)
        if not case_ids:
            return lines
        last_id = max(case_ids)
        for case_id in case_ids:
            with database.unit_of_work() as db:
                result = run_due(db, case_id, settings=settings, renderer=renderer, now=now)
            lines.extend(result.actions)
            for outbox_id in result.outbox_ids:
                enqueue_delivery(outbox_id)
