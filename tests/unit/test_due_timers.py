"""casework/due_timers.py: each timer action on its own, on an in-memory database with a
fixed clock: the notice it queues (rendered with the real templates) or the change it makes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.cases import timers
from gateway.cases.machine import CaseState
from gateway.casework import due_timers, schedule
from gateway.models import Merchant, Outbox
from tests.unit.casework_db import add_case, db, NOW, settings, work  # db: the fixture

S = CaseState
# kind: (case state, category, extra case fields, (notice, party) queued first, line starts with)
CASES = {
    timers.MERCHANT_REMINDER: (S.AWAITING_MERCHANT, "delivery", {}, ("merchant_reminder", "m"), "merchant reminder 1"),
    timers.ESCALATION: (S.AWAITING_MERCHANT, "delivery", {}, ("staff_escalation", "s"), "escalated to staff"),
    timers.STAFF_REMINDER: (S.WITH_STAFF, "payment", {}, ("staff_reminder", "s"), "staff reminder 1"),
    timers.STAFF_FOLLOWUP: (S.WITH_STAFF, "delivery", {"escalated": True}, ("staff_followup", "s"), "staff reminder 1"),
    timers.STAFF_REQUEST_REMINDER: (S.WITH_STAFF, "delivery", {"merchant_asked_at": NOW - timedelta(days=5)},
                                    ("staff_request_reminder", "m"), "merchant reminded"),
    timers.PAYMENT_ANSWER_DUE: (S.WITH_STAFF, "payment", {}, ("staff_payment_deadline", "s"), "staff warned"),
    timers.CUSTOMER_REMINDER: (S.AWAITING_CUSTOMER, "delivery", {}, ("customer_reminder", "c"), "customer reminder 1"),
    timers.CARD_WINDOW: (S.AWAITING_MERCHANT, "delivery", {}, ("card_window_warning", "c"), "card-dispute window"),
    timers.PRECLOSE: (S.AWAITING_CUSTOMER, "delivery", {}, ("preclose_notice", "c"), "pre-close notice sent"),
    timers.CATEGORY_REMINDER: (S.NEEDS_INFO, None, {}, ("ask_category", "c"), "customer asked again"),
    timers.CATEGORY_ESCALATION: (S.NEEDS_INFO, None, {}, ("staff_escalation", "s"), "escalated to staff"),
    timers.AUTOCLOSE: (S.AWAITING_CUSTOMER, "delivery", {}, ("case_closed", "c"), "closed: 180 days"),
}


def test_every_timer_kind_has_an_action():
    kinds = set(timers.CHAINS) | {timers.CARD_WINDOW, timers.PRECLOSE, timers.AUTOCLOSE}  # chained, and single
    assert set(due_timers.ACTIONS) == kinds == set(CASES)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_action_of(kind, db, tmp_path):
    state, category, fields, (notice, party), line = CASES[kind]
    unit = work(db, settings(tmp_path))
    case = add_case(db, state=state, category=category, waiting_since=NOW - timedelta(days=10), **fields)
    timer = timers.Timer(at=NOW, kind=kind, period="case", sequence=1)
    said = due_timers.ACTIONS[kind](unit, case, timer, schedule.calendar_for(unit.settings))
    assert said.startswith(line)
    first = db.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id)).first()
    assert (first.kind, first.party) == (notice, party)
    if kind in (timers.ESCALATION, timers.CATEGORY_ESCALATION):
        assert (case.state, case.escalated) == ("with_staff", True)
    if kind == timers.AUTOCLOSE:
        assert (case.state, case.closed_reason, case.next_due_at) == ("closed", "expired", None)


def test_no_staff_request_reminder_to_a_dead_address(db, tmp_path):
    unit = work(db, settings(tmp_path))
    case = add_case(db, state=S.WITH_STAFF, merchant_asked_at=NOW - timedelta(days=5))
    db.get(Merchant, "shop").address_invalid = True
    timer = timers.Timer(at=NOW, kind=timers.STAFF_REQUEST_REMINDER, period="case", sequence=1)
    assert "marked invalid" in due_timers.ACTIONS[timer.kind](unit, case, timer, schedule.calendar_for(unit.settings))
    assert unit.mailer.outbox_ids == []


def test_an_unknown_kind_is_an_error(db, tmp_path):
    unit = work(db, settings(tmp_path))
    case = add_case(db)
    with pytest.raises(ValueError, match="unknown timer kind"):
        due_timers._perform(unit, case, timers.Timer(at=NOW, kind="nap", period="case", sequence=1), None)
