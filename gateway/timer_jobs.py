"""Running due timers: claim due cases through the indexed `next_due_at`, then for each
case run what is due (reminders, escalation, warnings, auto-close) exactly once.

Each run is recorded in `timer_sends` under a unique (case, kind, period, sequence)
before its mail is composed, in the same transaction, so a second scheduler or a retried
job can never send a reminder twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import rights, store
from gateway.cases import timers
from gateway.cases.machine import EventKind
from gateway.clock import BusinessCalendar
from gateway.config import Settings
from gateway.flows import lifecycle
from gateway.flows.step import Work
from gateway.mail.templating import Renderer
from gateway.models import Case, TimerSend
from gateway.notices import Notice
from gateway.outgoing import Mailer


@dataclass
class TimerResult:
    outbox_ids: list[int] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def calendar_for(settings: Settings) -> BusinessCalendar:
    """The business calendar of `[timers]`, built once per process (building the holiday
    table costs a few milliseconds, and every processed message reschedules its case)."""
    return _calendar(settings.timers.timezone, settings.timers.country)


@lru_cache(maxsize=8)
def _calendar(timezone_name: str, country: str) -> BusinessCalendar:
    return BusinessCalendar(timezone_name, country)


def view_of(db: Session, case: Case) -> timers.TimerView:
    done = frozenset(db.execute(select(TimerSend.kind, TimerSend.period, TimerSend.sequence)
                                .where(TimerSend.case_id == case.id)).all())
    return timers.TimerView(
        state=case.state, category=case.category, dispute_type=case.dispute_type, escalated=case.escalated,
        merchant_unreachable=case.merchant_unreachable, opened_at=case.opened_at, waiting_since=case.waiting_since,
        transaction_date=case.transaction_date or case.opened_at,
        last_customer_message_at=case.last_customer_message_at, last_staff_message_at=case.last_staff_message_at,
        merchant_asked_at=case.merchant_asked_at,
        last_merchant_message_at=case.last_merchant_message_at, done=frozenset(tuple(row) for row in done),
    )


def _timer_kwargs(settings: Settings, calendar: BusinessCalendar) -> dict:
    return {"calendar": calendar, "settings": settings.timers, "card_window_types": rights.CARD_WINDOW_TYPES}


def reschedule(db: Session, case: Case, settings: Settings, calendar: BusinessCalendar | None = None) -> None:
    """Store the case's next due time (the scheduler's index)."""
    db.flush()
    calendar = calendar or calendar_for(settings)
    case.next_due_at = timers.next_due_at(view_of(db, case), **_timer_kwargs(settings, calendar))


def reschedule_open_cases(runtime, *, batch_size: int = 500) -> int:
    """Recompute every open case's next due time with the running code and `[timers]`.

    A case's `next_due_at` is otherwise recomputed only when something happens to it, so
    after an upgrade that adds a timer, or a change of the configured delays, cases opened
    before would wait with the old time. Schedulers do this when they start; rows a worker
    holds are skipped (the worker reschedules them itself). Returns how many changed."""
    settings = runtime.settings
    calendar = calendar_for(settings)
    changed, last_id = 0, 0
    while True:
        with runtime.database.unit_of_work() as db:
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


def upcoming(db: Session, case: Case, settings: Settings) -> list[dict]:
    """The timers still to come for a case, in time order (for `cases show`)."""
    calendar = calendar_for(settings)
    return [{"kind": t.kind, "sequence": t.sequence, "at": t.at.isoformat(),
             "local": calendar.local(t.at).strftime("%Y-%m-%d %H:%M %Z")}
            for t in timers.scheduled(view_of(db, case), **_timer_kwargs(settings, calendar))]


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
    run, skip = timers.due(view_of(db, case), now, **_timer_kwargs(settings, calendar))
    for timer in skip:
        _mark(db, case, timer, "skipped", now)
    for timer in run:
        if not _mark(db, case, timer, "done", now):
            continue
        description = _perform(work, case, timer, calendar)
        store.add_event(db, case, f"timer_{timer.kind}", at=now, party=None, sequence=timer.sequence,
                        due_at=timer.at.isoformat())
        result.actions.append(f"case {case.reference.upper()}: {description} (due {timer.at.isoformat(timespec='minutes')})")
    case.timer_lease_until = None
    reschedule(db, case, settings, calendar)
    result.outbox_ids.extend(mailer.outbox_ids)
    return result


def _perform(work: Work, case: Case, timer: timers.Timer, calendar: BusinessCalendar) -> str:
    mailer = work.mailer
    settings = work.settings.timers
    if timer.kind == timers.MERCHANT_REMINDER:
        escalation_date = calendar.add_business_days(case.waiting_since, settings.escalation_business_days)
        extra = {"reminder": {"sequence": timer.sequence, "final": timer.sequence == len(settings.merchant_reminder_business_days),
                              "escalation_date": escalation_date}}
        extra.update(lifecycle.rights_context(work, case, escalation_date=escalation_date))
        mailer.notice(Notice.MERCHANT_REMINDER, case, "m", extra)
        return f"merchant reminder {timer.sequence} sent"
    if timer.kind == timers.ESCALATION:
        lifecycle.escalate(work, case, reason="merchant_silent", party=None)
        return "escalated to staff: no answer from the merchant"
    if timer.kind == timers.STAFF_REMINDER:
        mailer.notice(Notice.STAFF_REMINDER, case, "s", {"reminder": {"sequence": timer.sequence}})
        return f"staff reminder {timer.sequence} sent (payment case without a staff answer)"
    if timer.kind == timers.STAFF_FOLLOWUP:
        extra = {"reminder": {"sequence": timer.sequence, "since": case.waiting_since,
                              "reason": lifecycle.escalation_reason(work, case),
                              "merchant": lifecycle.merchant_told_of_escalation(work, case)}}
        mailer.notice(Notice.STAFF_FOLLOWUP, case, "s", extra)
        return f"staff reminder {timer.sequence} sent (case with staff, no staff message since {case.waiting_since.date()})"
    if timer.kind == timers.STAFF_REQUEST_REMINDER:
        if not lifecycle.merchant_reachable(work, case):
            return "no staff-request reminder: the merchant's address is marked invalid"
        mailer.notice(Notice.STAFF_REQUEST_REMINDER, case, "m",
                      {"reminder": {"sequence": timer.sequence, "asked_at": case.merchant_asked_at}})
        return f"merchant reminded (staff wrote on {case.merchant_asked_at.date()} and wait for an answer)"
    if timer.kind == timers.PAYMENT_ANSWER_DUE:
        due, latest = timers.payment_answer_deadlines(view_of(work.db, case), calendar, settings)
        mailer.notice(Notice.STAFF_PAYMENT_DEADLINE, case, "s", {"deadline": {
            "sequence": timer.sequence, "due": due, "latest": latest,
            "business_days": settings.payment_answer_business_days,
            "max_business_days": settings.payment_answer_max_business_days}})
        which = "written answer" if timer.sequence == 1 else "latest answer after a holding reply"
        return f"staff warned: {which} due by {(due if timer.sequence == 1 else latest).date()}"
    if timer.kind == timers.CUSTOMER_REMINDER:
        mailer.notice(Notice.CUSTOMER_REMINDER, case, "c", {"reminder": {"sequence": timer.sequence}})
        return f"customer reminder {timer.sequence} sent"
    if timer.kind == timers.CARD_WINDOW:
        tx_date = case.transaction_date or case.opened_at
        mailer.notice(Notice.CARD_WINDOW_WARNING, case, "c",
                      {"window": {"closes_around": tx_date + timedelta(days=timers.CARD_WINDOW_CLOSES_DAYS)}})
        return "card-dispute window warning sent to the customer"
    if timer.kind == timers.PRECLOSE:
        view = view_of(work.db, case)
        extra = {"preclose": {"close_at": timers.autoclose_at(view, settings)}}
        mailer.notice(Notice.PRECLOSE_NOTICE, case, "c", extra)
        if lifecycle.merchant_reachable(work, case) and lifecycle.merchant_involved(work, case):
            mailer.notice(Notice.PRECLOSE_NOTICE, case, "m", extra)
        return "pre-close notice sent"
    if timer.kind == timers.CATEGORY_REMINDER:
        mailer.notice(Notice.ASK_CATEGORY, case, "c", {"reminder": {"sequence": timer.sequence}})
        return f"customer asked again (reminder {timer.sequence}): payment or delivery?"
    if timer.kind == timers.CATEGORY_ESCALATION:
        lifecycle.escalate(work, case, reason="category_unknown", party=None)
        return "escalated to staff: the customer never said payment or delivery"
    if timer.kind == timers.AUTOCLOSE:
        lifecycle.close(work, case, EventKind.EXPIRED, party=None)
        return "closed: 180 days after the transaction without a new request"
    raise ValueError(f"unknown timer kind {timer.kind}")


def claim_due_cases(db: Session, *, now: datetime, lease_seconds: int, limit: int = 500,
                    after_id: int | None = None) -> list[int]:
    """Ids of cases whose next timer is due (through the `next_due_at` index), claimed for
    `lease_seconds` (SKIP LOCKED on PostgreSQL), most overdue first; with `after_id`, only
    cases of a higher id, in id order (one pass over every due case, each claimed once)."""
    paging = [Case.id > after_id] if after_id is not None else []
    return store.claim_ids(db, Case, Case.next_due_at.is_not(None), Case.next_due_at <= now,
                           or_(Case.timer_lease_until.is_(None), Case.timer_lease_until <= now), *paging,
                           order_by=Case.id if after_id is not None else Case.next_due_at, limit=limit,
                           values={"timer_lease_until": now + timedelta(seconds=lease_seconds)})


def run_all_due(runtime) -> list[str]:
    """Claim and run every due case timer now (the `timers run` command); lines of what was done."""
    now = runtime.now()
    lines: list[str] = []
    last_id = 0
    while True:
        with runtime.database.unit_of_work() as db:
            case_ids = claim_due_cases(db, now=now, lease_seconds=runtime.settings.workers.lease_seconds,
                                       after_id=last_id)
        if not case_ids:
            return lines
        last_id = max(case_ids)
        for case_id in case_ids:
            with runtime.database.unit_of_work() as db:
                result = run_due(db, case_id, settings=runtime.settings, renderer=runtime.renderer, now=now)
            lines.extend(result.actions)
            for outbox_id in result.outbox_ids:
                runtime.enqueue_delivery(outbox_id)
