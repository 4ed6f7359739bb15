"""Case timers as pure functions of the case and the calendar: what is scheduled, what is
due at `now`, and when the next one falls.

Each timer is (kind, period, sequence). `period` names the waiting period it belongs to
(the instant the case started waiting), so a merchant that answers and is then asked
again gets a fresh series of reminders; `sequence` numbers the steps of one series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.clock import BusinessCalendar
from gateway.config import TimerSettings

MERCHANT_REMINDER = "merchant_reminder"
ESCALATION = "escalation"
STAFF_REMINDER = "staff_reminder"
STAFF_FOLLOWUP = "staff_followup"
STAFF_REQUEST_REMINDER = "staff_request_reminder"  # to the merchant: staff wait for your answer
PAYMENT_ANSWER_DUE = "payment_answer_due"  # to staff: the written-answer deadline is near (1: 15 BD, 2: 35 BD)
CUSTOMER_REMINDER = "customer_reminder"
CARD_WINDOW = "card_window"
PRECLOSE = "preclose"
AUTOCLOSE = "autoclose"
CATEGORY_REMINDER = "category_reminder"
CATEGORY_ESCALATION = "category_escalation"
CASE_PERIOD = "case"
CARD_WINDOW_CLOSES_DAYS = 120  # most card schemes' dispute windows; no warning after it

# Timers of one chain: when several are due at once (after downtime), only the last runs.
CHAINS = {
    MERCHANT_REMINDER: "merchant",
    ESCALATION: "merchant",
    STAFF_REMINDER: "staff",
    STAFF_FOLLOWUP: "staff",
    STAFF_REQUEST_REMINDER: "staff_request",
    PAYMENT_ANSWER_DUE: "payment_answer",
    CUSTOMER_REMINDER: "customer",
    CATEGORY_REMINDER: "category",
    CATEGORY_ESCALATION: "category",
}


@dataclass(frozen=True)
class TimerView:
    """What timers need to know of a case."""

    state: str
    category: str | None
    dispute_type: str
    escalated: bool
    merchant_unreachable: bool
    opened_at: datetime
    waiting_since: datetime
    transaction_date: datetime
    last_customer_message_at: datetime | None
    last_staff_message_at: datetime | None
    merchant_asked_at: datetime | None = None  # staff last wrote to the merchant
    last_merchant_message_at: datetime | None = None
    done: frozenset[tuple[str, str, int]] = frozenset()  # (kind, period, sequence) already run


@dataclass(frozen=True, order=True)
class Timer:
    at: datetime
    kind: str
    period: str
    sequence: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.kind, self.period, self.sequence)


def _period(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def scheduled(case: TimerView, *, calendar: BusinessCalendar, settings: TimerSettings,
              card_window_types: frozenset[str]) -> list[Timer]:
    """Every timer that applies to the case and has not run yet, in time order."""
    if case.state == "closed":
        return []
    timers: list[Timer] = []
    if case.state == "needs_info":
        # "payment or delivery?" unanswered: ask again, then hand the case to staff
        period = _period(case.waiting_since)
        for sequence, days in enumerate(settings.customer_reminder_days, start=1):
            timers.append(Timer(case.waiting_since + timedelta(days=days), CATEGORY_REMINDER, period, sequence))
        last = settings.customer_reminder_days[-1] if settings.customer_reminder_days else 0
        timers.append(Timer(case.waiting_since + timedelta(days=last + 7), CATEGORY_ESCALATION, period, 1))
    if case.state == "awaiting_merchant" and case.category == "delivery" and not case.escalated \
            and not case.merchant_unreachable:
        period = _period(case.waiting_since)
        for sequence, days in enumerate(settings.merchant_reminder_business_days, start=1):
            timers.append(Timer(calendar.add_business_days(case.waiting_since, days), MERCHANT_REMINDER, period, sequence))
        timers.append(Timer(calendar.add_business_days(case.waiting_since, settings.escalation_business_days),
                            ESCALATION, period, 1))
    if case.state == "with_staff" and case.category == "payment" and case.last_staff_message_at is None:
        timers.extend(_staff_reminders(case, calendar, settings))
    if case.state == "with_staff" and case.category != "payment" and not _staff_acted_since(case, case.waiting_since):
        period = _period(case.waiting_since)
        for sequence, days in enumerate(settings.staff_followup_business_days, start=1):
            timers.append(Timer(calendar.add_business_days(case.waiting_since, days), STAFF_FOLLOWUP, period, sequence))
    if case.state == "with_staff" and _merchant_owes_staff(case):
        period = _period(case.merchant_asked_at)
        for sequence, days in enumerate(settings.staff_request_reminder_business_days, start=1):
            timers.append(Timer(calendar.add_business_days(case.merchant_asked_at, days),
                                STAFF_REQUEST_REMINDER, period, sequence))
    if case.category == "payment" and settings.payment_answer_business_days:
        limits = [settings.payment_answer_business_days, settings.payment_answer_max_business_days]
        for sequence, days in enumerate(dict.fromkeys(limits), start=1):
            warn_after = max(0, days - settings.payment_answer_warning_business_days)
            timers.append(Timer(calendar.add_business_days(case.opened_at, warn_after), PAYMENT_ANSWER_DUE,
                                CASE_PERIOD, sequence))
    if case.state == "awaiting_customer":
        period = _period(case.waiting_since)
        for sequence, days in enumerate(settings.customer_reminder_days, start=1):
            timers.append(Timer(case.waiting_since + timedelta(days=days), CUSTOMER_REMINDER, period, sequence))
    if case.dispute_type in card_window_types and case.category is not None:
        warning = case.transaction_date + timedelta(days=settings.card_window_warning_days)
        if case.opened_at < case.transaction_date + timedelta(days=CARD_WINDOW_CLOSES_DAYS):
            timers.append(Timer(max(warning, case.opened_at), CARD_WINDOW, CASE_PERIOD, 1))
    preclose = case.transaction_date + timedelta(days=settings.preclose_notice_days)
    if case.opened_at < preclose:
        timers.append(Timer(preclose, PRECLOSE, CASE_PERIOD, 1))
    closing = autoclose_at(case, settings)
    timers.append(Timer(closing, AUTOCLOSE, _period(closing), 1))  # a reopened case can close again
    return sorted(t for t in timers if t.key not in case.done)


def payment_answer_deadlines(case: TimerView, calendar: BusinessCalendar,
                             settings: TimerSettings) -> tuple[datetime, datetime]:
    """(written answer due, latest date after a holding reply), counted from the complaint."""
    return (calendar.add_business_days(case.opened_at, settings.payment_answer_business_days),
            calendar.add_business_days(case.opened_at, settings.payment_answer_max_business_days))


def _merchant_owes_staff(case: TimerView) -> bool:
    """Staff wrote to the merchant alone (#to merchant) while the case was theirs, and nothing
    came back since (a held message counts for nothing until staff release it: anyone could
    otherwise stop the reminders). A request made before the case came to staff
    (escalation, reopening) is not chased again."""
    if case.merchant_asked_at is None or case.merchant_unreachable:
        return False
    if case.merchant_asked_at < case.waiting_since:
        return False
    return case.last_merchant_message_at is None or case.last_merchant_message_at < case.merchant_asked_at


def _staff_acted_since(case: TimerView, since: datetime) -> bool:
    return case.last_staff_message_at is not None and case.last_staff_message_at >= since


def _staff_reminders(case: TimerView, calendar: BusinessCalendar, settings: TimerSettings) -> list[Timer]:
    """End of the business day the payment case reached staff (the next one after the
    cut-off), then each next day."""
    local = calendar.local(case.waiting_since)
    cutoff = settings.hour_minute(settings.payment_cutoff)
    day = local.date()
    if not calendar.is_business_day(day) or (local.hour, local.minute) >= cutoff:
        day = calendar.next_business_day(day) if calendar.is_business_day(day) else calendar.business_day_on_or_after(day)
    end = settings.hour_minute(settings.business_day_end)
    timers = []
    for sequence in range(1, settings.payment_staff_reminders + 1):
        timers.append(Timer(calendar.at_local_time(day, *end), STAFF_REMINDER, _period(case.waiting_since), sequence))
        day = calendar.next_business_day(day)
    return timers


def autoclose_at(case: TimerView, settings: TimerSettings) -> datetime:
    """Transaction date + 180 days, or 14 quiet days after the customer's last message or
    staff's last action (a staff message or reopening holds the case open), if later."""
    at = case.transaction_date + timedelta(days=settings.autoclose_days)
    quiet = timedelta(days=settings.autoclose_quiet_days)
    for last in (case.last_customer_message_at, case.last_staff_message_at):
        if last is not None:
            at = max(at, last + quiet)
    return at


def due(case: TimerView, now: datetime, **kwargs) -> tuple[list[Timer], list[Timer]]:
    """(to run, to skip) at `now`: of several due timers of one chain only the last runs."""
    ready = [t for t in scheduled(case, **kwargs) if t.at <= now]
    window_closed = case.transaction_date + timedelta(days=CARD_WINDOW_CLOSES_DAYS)
    late = [t for t in ready if t.kind == CARD_WINDOW and now >= window_closed]  # no warning after the fact
    if case.category == "payment":  # nor about a deadline already past (a case reopened later)
        deadlines = payment_answer_deadlines(case, kwargs["calendar"], kwargs["settings"])
        late += [t for t in ready if t.kind == PAYMENT_ANSWER_DUE and now >= deadlines[t.sequence - 1]]
    ready = [t for t in ready if t not in late]
    last_of_chain: dict[str, Timer] = {}
    for timer in ready:
        chain = CHAINS.get(timer.kind)
        if chain:
            last_of_chain[chain] = timer
    run = [t for t in ready if CHAINS.get(t.kind) is None or last_of_chain[CHAINS[t.kind]] == t]
    if any(t.kind == AUTOCLOSE for t in run):
        run = [t for t in run if t.kind == AUTOCLOSE]  # closing makes every other notice moot
    skip = [t for t in ready if t not in run] + late
    return run, skip


def next_due_at(case: TimerView, **kwargs) -> datetime | None:
    timers = scheduled(case, **kwargs)
    return timers[0].at if timers else None
