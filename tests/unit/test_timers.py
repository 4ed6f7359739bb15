"""Timers as pure functions of the case and a fixed clock: business days, French public
holidays, DST, payment cut-off, waiting periods, chains, auto-close."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gateway.cases import timers
from gateway.clock import BusinessCalendar
from gateway.config import TimerSettings

PARIS = ZoneInfo("Europe/Paris")
CAL = BusinessCalendar("Europe/Paris", "FR")
SETTINGS = TimerSettings()
CARD = frozenset({"not_delivered", "not_as_described", "refund_not_received", "withdrawal_refund"})
KW = {"calendar": CAL, "settings": SETTINGS, "card_window_types": CARD}


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(timezone.utc)


def view(**changes) -> timers.TimerView:
    base = timers.TimerView(
        state="awaiting_merchant", category="delivery", dispute_type="other", escalated=False,
        merchant_unreachable=False, opened_at=paris(2026, 11, 26, 10, 0), waiting_since=paris(2026, 11, 26, 10, 0),
        transaction_date=paris(2026, 11, 20, 0, 0), last_customer_message_at=paris(2026, 11, 26, 10, 0),
        last_staff_message_at=None,
    )
    return replace(base, **changes)


def _at(case, kind, sequence=1):
    return next(t.at for t in timers.scheduled(case, **KW) if t.kind == kind and t.sequence == sequence)


@pytest.mark.parametrize("start, days, expected", [
    (paris(2026, 11, 26, 10, 0), 2, paris(2026, 11, 30, 10, 0)),  # Thursday + 2 BD skips the weekend
    (paris(2026, 11, 28, 15, 0), 1, paris(2026, 11, 30, 15, 0)),  # a Saturday start counts from Monday
    (paris(2026, 12, 23, 9, 0), 2, paris(2026, 12, 28, 9, 0)),  # Christmas Day is a holiday
    (paris(2027, 4, 30, 11, 0), 1, paris(2027, 5, 3, 11, 0)),  # 1 May falls on a Saturday in 2027
    (paris(2026, 5, 7, 11, 0), 1, paris(2026, 5, 11, 11, 0)),  # 8 May (Victoire 1945), a Friday
    (paris(2026, 7, 13, 11, 0), 1, paris(2026, 7, 15, 11, 0)),  # 14 July
    (paris(2026, 10, 23, 10, 0), 2, paris(2026, 10, 27, 10, 0)),  # across the end of DST: still 10:00 Paris
    (paris(2027, 3, 26, 10, 0), 1, paris(2027, 3, 30, 10, 0)),  # across the start of DST, then Easter Monday
])
def test_business_days(start, days, expected):
    assert CAL.add_business_days(start, days) == expected


def test_merchant_silence_reminders_and_escalation():
    case = view()
    assert _at(case, timers.MERCHANT_REMINDER, 1) == paris(2026, 11, 30, 10, 0)
    assert _at(case, timers.MERCHANT_REMINDER, 2) == paris(2026, 12, 3, 10, 0)
    assert _at(case, timers.ESCALATION) == paris(2026, 12, 7, 10, 0)
    assert timers.next_due_at(case, **KW) == paris(2026, 11, 30, 10, 0)


@pytest.mark.parametrize("now, expected", [
    (paris(2026, 11, 30, 9, 59), []),
    (paris(2026, 11, 30, 10, 0), [(timers.MERCHANT_REMINDER, 1)]),
    (paris(2026, 12, 4, 8, 0), [(timers.MERCHANT_REMINDER, 2)]),  # after downtime: only the latest of the chain
    (paris(2026, 12, 8, 8, 0), [(timers.ESCALATION, 1)]),
])
def test_due_runs_only_the_last_of_a_chain(now, expected):
    run, skip = timers.due(view(), now, **KW)
    assert [(t.kind, t.sequence) for t in run] == expected
    assert all(t.kind in (timers.MERCHANT_REMINDER,) for t in skip)


def test_done_timers_are_not_scheduled_again():
    case = view()
    period = timers._period(case.waiting_since)
    done = view(done=frozenset({(timers.MERCHANT_REMINDER, period, 1)}))
    assert [t.sequence for t in timers.scheduled(done, **KW) if t.kind == timers.MERCHANT_REMINDER] == [2]


def test_a_new_waiting_period_gets_a_fresh_series():
    first = view()
    period = timers._period(first.waiting_since)
    later = view(waiting_since=paris(2026, 12, 14, 9, 0),
                 done=frozenset({(timers.MERCHANT_REMINDER, period, 1), (timers.MERCHANT_REMINDER, period, 2)}))
    assert _at(later, timers.MERCHANT_REMINDER, 1) == paris(2026, 12, 16, 9, 0)


@pytest.mark.parametrize("changes", [dict(escalated=True), dict(merchant_unreachable=True), dict(category="payment"),
                                     dict(state="awaiting_customer"), dict(state="closed")])
def test_no_merchant_reminders_when_they_make_no_sense(changes):
    assert all(t.kind not in (timers.MERCHANT_REMINDER, timers.ESCALATION) for t in timers.scheduled(view(**changes), **KW))


@pytest.mark.parametrize("opened, first, second", [
    (paris(2026, 11, 26, 10, 0), paris(2026, 11, 26, 17, 0), paris(2026, 11, 27, 17, 0)),  # before the 15:00 cut-off
    (paris(2026, 11, 26, 16, 0), paris(2026, 11, 27, 17, 0), paris(2026, 11, 30, 17, 0)),  # after it: next BD
    (paris(2026, 11, 28, 10, 0), paris(2026, 11, 30, 17, 0), paris(2026, 12, 1, 17, 0)),  # Saturday: Monday
    (paris(2026, 12, 24, 16, 0), paris(2026, 12, 28, 17, 0), paris(2026, 12, 29, 17, 0)),  # Christmas Eve late
])
def test_payment_case_staff_reminders(opened, first, second):
    case = view(state="with_staff", category="payment", opened_at=opened, waiting_since=opened)
    assert _at(case, timers.STAFF_REMINDER, 1) == first
    assert _at(case, timers.STAFF_REMINDER, 2) == second
    answered = replace(case, last_staff_message_at=opened + timedelta(hours=1))
    assert all(t.kind != timers.STAFF_REMINDER for t in timers.scheduled(answered, **KW))


def test_a_case_handed_to_staff_reminds_staff_until_one_of_them_writes():
    escalated = paris(2026, 12, 7, 10, 0)  # a Monday
    case = view(state="with_staff", escalated=True, waiting_since=escalated)
    assert _at(case, timers.STAFF_FOLLOWUP, 1) == paris(2026, 12, 9, 10, 0)
    assert _at(case, timers.STAFF_FOLLOWUP, 2) == paris(2026, 12, 14, 10, 0)
    # a staff message before the escalation does not count; one after it stops the reminders
    earlier = replace(case, last_staff_message_at=escalated - timedelta(days=1))
    assert _at(earlier, timers.STAFF_FOLLOWUP, 1) == paris(2026, 12, 9, 10, 0)
    answered = replace(case, last_staff_message_at=escalated + timedelta(hours=3))
    assert all(t.kind != timers.STAFF_FOLLOWUP for t in timers.scheduled(answered, **KW))
    # a category question nobody answered reaches staff without a category
    assert _at(replace(case, category=None), timers.STAFF_FOLLOWUP, 1) == paris(2026, 12, 9, 10, 0)
    # payment cases have their own same-day reminders instead
    payment = replace(case, category="payment")
    assert all(t.kind != timers.STAFF_FOLLOWUP for t in timers.scheduled(payment, **KW))
    # after downtime only the last one of the chain is sent
    run, skip = timers.due(case, paris(2026, 12, 20, 10, 0), **KW)
    assert [t.sequence for t in run if t.kind == timers.STAFF_FOLLOWUP] == [2]
    assert [t.sequence for t in skip if t.kind == timers.STAFF_FOLLOWUP] == [1]


def test_staff_asked_the_merchant_who_is_reminded_one_business_day_later_until_it_answers():
    asked = paris(2026, 11, 27, 11, 0)  # a Friday
    case = view(state="with_staff", category="payment", merchant_asked_at=asked,
                last_staff_message_at=asked, last_merchant_message_at=None)
    assert _at(case, timers.STAFF_REQUEST_REMINDER, 1) == paris(2026, 11, 30, 11, 0)
    older_answer = replace(case, last_merchant_message_at=asked - timedelta(days=2))
    assert _at(older_answer, timers.STAFF_REQUEST_REMINDER, 1) == paris(2026, 11, 30, 11, 0)
    for changes in ({"last_merchant_message_at": asked + timedelta(hours=2)},  # it answered
                    {"merchant_unreachable": True}, {"merchant_asked_at": None},
                    {"state": "awaiting_customer"}):  # not a staff-owned case any more
        assert all(t.kind != timers.STAFF_REQUEST_REMINDER for t in timers.scheduled(replace(case, **changes), **KW))
    # a request made before the case came to staff (escalated or reopened since) is not chased
    later = replace(case, waiting_since=asked + timedelta(hours=1))
    assert all(t.kind != timers.STAFF_REQUEST_REMINDER for t in timers.scheduled(later, **KW))
    # a later staff message starts a new series
    again = replace(case, merchant_asked_at=asked + timedelta(days=7), done=frozenset(
        {(timers.STAFF_REQUEST_REMINDER, timers._period(asked), 1)}))
    assert _at(again, timers.STAFF_REQUEST_REMINDER, 1) == paris(2026, 12, 7, 11, 0)


def test_open_payment_cases_warn_staff_before_the_written_answer_deadlines():
    opened = paris(2026, 11, 26, 10, 0)  # a Thursday
    case = view(state="with_staff", category="payment", opened_at=opened, waiting_since=opened,
                last_staff_message_at=opened + timedelta(hours=1))
    due, latest = timers.payment_answer_deadlines(case, CAL, SETTINGS)
    assert (due, latest) == (paris(2026, 12, 17, 10, 0), paris(2027, 1, 18, 10, 0))  # 15 and 35 BD, 25 Dec and 1 Jan skipped
    assert _at(case, timers.PAYMENT_ANSWER_DUE, 1) == paris(2026, 12, 14, 10, 0)  # 3 BD before
    assert _at(case, timers.PAYMENT_ANSWER_DUE, 2) == paris(2027, 1, 13, 10, 0)
    for changes in ({"category": "delivery"}, {"state": "closed"}):
        assert all(t.kind != timers.PAYMENT_ANSWER_DUE for t in timers.scheduled(replace(case, **changes), **KW))
    run, skip = timers.due(case, paris(2027, 1, 14, 10, 0), **KW)  # after downtime: only the later one
    assert [t.sequence for t in run if t.kind == timers.PAYMENT_ANSWER_DUE] == [2]
    run, skip = timers.due(case, paris(2027, 2, 1, 10, 0), **KW)  # both deadlines past (a case reopened late)
    assert not [t for t in run if t.kind == timers.PAYMENT_ANSWER_DUE]
    assert sorted(t.sequence for t in skip if t.kind == timers.PAYMENT_ANSWER_DUE) == [1, 2]
    off = {**KW, "settings": replace(SETTINGS, payment_answer_business_days=0)}
    assert all(t.kind != timers.PAYMENT_ANSWER_DUE for t in timers.scheduled(case, **off))


def test_customer_reminders_at_7_and_14_days_and_silence_never_closes_early():
    answered = paris(2026, 11, 27, 12, 0)
    case = view(state="awaiting_customer", waiting_since=answered)
    assert _at(case, timers.CUSTOMER_REMINDER, 1) == answered + timedelta(days=7)
    assert _at(case, timers.CUSTOMER_REMINDER, 2) == answered + timedelta(days=14)
    assert _at(case, timers.AUTOCLOSE) == case.transaction_date + timedelta(days=180)


def test_autoclose_waits_14_days_after_the_customers_last_message():
    tx = paris(2026, 1, 10, 0, 0)
    late = tx + timedelta(days=175)
    case = view(transaction_date=tx, last_customer_message_at=late)
    assert timers.autoclose_at(case, SETTINGS) == late + timedelta(days=14)
    quiet = view(transaction_date=tx, last_customer_message_at=tx + timedelta(days=100))
    assert timers.autoclose_at(quiet, SETTINGS) == tx + timedelta(days=180)


def test_autoclose_due_runs_alone():
    tx = paris(2026, 1, 10, 0, 0)
    case = view(transaction_date=tx, opened_at=tx + timedelta(days=5), waiting_since=tx + timedelta(days=5),
                last_customer_message_at=tx + timedelta(days=5), dispute_type="not_delivered")
    run, skip = timers.due(case, tx + timedelta(days=181), **KW)
    assert [t.kind for t in run] == [timers.AUTOCLOSE]
    assert {t.kind for t in skip} >= {timers.PRECLOSE, timers.CARD_WINDOW, timers.ESCALATION}


def test_card_window_warning_only_for_its_types():
    tx = paris(2026, 11, 20, 0, 0)
    assert _at(view(dispute_type="not_delivered"), timers.CARD_WINDOW) == tx + timedelta(days=100)
    assert all(t.kind != timers.CARD_WINDOW for t in timers.scheduled(view(dispute_type="double_charge"), **KW))


def test_preclose_at_170_days_unless_the_case_opened_later():
    tx = paris(2026, 1, 10, 0, 0)
    early = tx + timedelta(days=5)
    assert _at(view(transaction_date=tx, opened_at=early, waiting_since=early), timers.PRECLOSE) == tx + timedelta(days=170)
    late = view(transaction_date=tx, opened_at=tx + timedelta(days=172), waiting_since=tx + timedelta(days=172))
    assert all(t.kind != timers.PRECLOSE for t in timers.scheduled(late, **KW))


def test_closed_cases_have_no_timers():
    assert timers.next_due_at(view(state="closed"), **KW) is None
