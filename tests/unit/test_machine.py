"""The case state machine: the transition table, refused events, and the flags apply() keeps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import product

import pytest

from gateway.cases.machine import TRANSITIONS, CaseState, CaseView, ClosedReason, EventKind, apply

S, E = CaseState, EventKind
BEFORE = datetime(2024, 9, 1, 8, 0, tzinfo=timezone.utc)
NOW = BEFORE + timedelta(days=3)
OPEN = (S.NEEDS_INFO, S.AWAITING_MERCHANT, S.AWAITING_CUSTOMER, S.WITH_STAFF)

# The table as the design states it: who must act next after each event.
EXPECTED = {
    (S.NEEDS_INFO, E.CATEGORY_DELIVERY): S.AWAITING_MERCHANT,
    (S.NEEDS_INFO, E.CATEGORY_PAYMENT): S.WITH_STAFF,
    (S.NEEDS_INFO, E.CUSTOMER_REPLIED): S.NEEDS_INFO,
    (S.AWAITING_MERCHANT, E.MERCHANT_REPLIED): S.AWAITING_CUSTOMER,
    (S.AWAITING_MERCHANT, E.CUSTOMER_REPLIED): S.AWAITING_MERCHANT,
    (S.AWAITING_CUSTOMER, E.CUSTOMER_REPLIED): S.AWAITING_MERCHANT,
    (S.AWAITING_CUSTOMER, E.MERCHANT_REPLIED): S.AWAITING_CUSTOMER,
    (S.WITH_STAFF, E.CUSTOMER_REPLIED): S.WITH_STAFF,
    (S.WITH_STAFF, E.MERCHANT_REPLIED): S.WITH_STAFF,
    **{(s, E.STAFF_WROTE): s for s in OPEN},
    **{(s, E.ESCALATED): S.WITH_STAFF for s in OPEN},
    **{(s, E.MERCHANT_BOUNCED): S.WITH_STAFF for s in OPEN},
    **{(s, E.RESOLVED): S.CLOSED for s in OPEN},
    **{(s, E.STAFF_CLOSED): S.CLOSED for s in OPEN},
    **{(s, E.EXPIRED): S.CLOSED for s in OPEN},
    (S.CLOSED, E.REOPENED): S.WITH_STAFF,
}
REFUSED = sorted(set(product(S, E)) - set(EXPECTED), key=lambda pair: (pair[0].value, pair[1].value))


def _case(state: CaseState, **fields) -> CaseView:
    return CaseView(state=state, waiting_since=BEFORE, **fields)


def _id(pair) -> str:
    return f"{pair[0].value}+{pair[1].value}"


def test_table_is_the_documented_one():
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize("pair, target", sorted(EXPECTED.items(), key=lambda kv: _id(kv[0])),
                         ids=[_id(p) for p, _ in sorted(EXPECTED.items(), key=lambda kv: _id(kv[0]))])
def test_every_allowed_pair_gives_its_target(pair, target):
    state, event = pair
    outcome = apply(_case(state), event, now=NOW)
    assert outcome.applied
    assert outcome.after.state is target
    assert outcome.before == _case(state)


@pytest.mark.parametrize("pair", REFUSED, ids=[_id(p) for p in REFUSED])
def test_every_other_pair_is_refused_and_leaves_the_case_unchanged(pair):
    state, event = pair
    case = _case(state, escalated=False, closed_reason=ClosedReason.EXPIRED if state is S.CLOSED else None)
    outcome = apply(case, event, now=NOW)
    assert outcome.applied is False
    assert outcome.after == case
    assert not outcome.changed
    assert event.value in outcome.note and state.value in outcome.note


def test_closed_case_refuses_everything_but_reopen():
    allowed = {event for (state, event) in EXPECTED if state is S.CLOSED}
    assert allowed == {E.REOPENED}


@pytest.mark.parametrize("state", OPEN)
@pytest.mark.parametrize("event, unreachable", [(E.ESCALATED, False), (E.MERCHANT_BOUNCED, True)])
def test_escalating_events_raise_the_escalated_flag(state, event, unreachable):
    after = apply(_case(state), event, now=NOW).after
    assert after.escalated is True
    assert after.merchant_unreachable is unreachable


def test_reopening_brings_staff_in():
    assert apply(_case(S.CLOSED), E.REOPENED, now=NOW).after.escalated is True


@pytest.mark.parametrize("pair", [p for p in EXPECTED if p[1] not in (E.ESCALATED, E.MERCHANT_BOUNCED, E.REOPENED)],
                         ids=_id)
def test_other_events_do_not_escalate(pair):
    state, event = pair
    after = apply(_case(state), event, now=NOW).after
    assert after.escalated is False
    assert after.merchant_unreachable is False


@pytest.mark.parametrize("pair", list(EXPECTED), ids=_id)
def test_escalated_and_unreachable_flags_are_never_cleared(pair):
    state, event = pair
    after = apply(_case(state, escalated=True, merchant_unreachable=True), event, now=NOW).after
    assert after.escalated is True
    assert after.merchant_unreachable is True


@pytest.mark.parametrize("state", OPEN)
@pytest.mark.parametrize("event, reason", [
    (E.RESOLVED, ClosedReason.CUSTOMER_RESOLVED),
    (E.STAFF_CLOSED, ClosedReason.STAFF_AGREEMENT),
    (E.EXPIRED, ClosedReason.EXPIRED),
])
def test_closing_event_sets_its_closed_reason(state, event, reason):
    after = apply(_case(state), event, now=NOW).after
    assert after.state is S.CLOSED
    assert after.closed_reason is reason


@pytest.mark.parametrize("reason", list(ClosedReason))
def test_reopening_clears_the_closed_reason(reason):
    after = apply(_case(S.CLOSED, closed_reason=reason), E.REOPENED, now=NOW).after
    assert after.state is S.WITH_STAFF
    assert after.closed_reason is None


@pytest.mark.parametrize("pair", [p for p in EXPECTED if EXPECTED[p] is not S.CLOSED], ids=_id)
def test_open_targets_have_no_closed_reason(pair):
    state, event = pair
    assert apply(_case(state), event, now=NOW).after.closed_reason is None


@pytest.mark.parametrize("pair", list(EXPECTED), ids=_id)
def test_waiting_since_moves_only_when_the_state_changes(pair):
    state, event = pair
    after = apply(_case(state), event, now=NOW).after
    expected = NOW if EXPECTED[pair] is not state else BEFORE
    assert after.waiting_since == expected


def test_refused_event_does_not_move_waiting_since():
    assert apply(_case(S.CLOSED), E.CUSTOMER_REPLIED, now=NOW).after.waiting_since == BEFORE


def test_waiting_since_is_set_when_there_was_none():
    after = apply(CaseView(state=S.NEEDS_INFO), E.CATEGORY_DELIVERY, now=NOW).after
    assert after.waiting_since == NOW


def test_a_whole_case_life():
    case = CaseView(state=S.NEEDS_INFO, waiting_since=BEFORE)
    steps = [
        (E.CATEGORY_DELIVERY, S.AWAITING_MERCHANT),
        (E.CUSTOMER_REPLIED, S.AWAITING_MERCHANT),
        (E.MERCHANT_REPLIED, S.AWAITING_CUSTOMER),
        (E.CUSTOMER_REPLIED, S.AWAITING_MERCHANT),
        (E.MERCHANT_BOUNCED, S.WITH_STAFF),
        (E.STAFF_WROTE, S.WITH_STAFF),
        (E.RESOLVED, S.CLOSED),
        (E.CUSTOMER_REPLIED, S.CLOSED),  # refused
        (E.REOPENED, S.WITH_STAFF),
        (E.STAFF_CLOSED, S.CLOSED),
    ]
    for minute, (event, state) in enumerate(steps):
        case = apply(case, event, now=NOW + timedelta(minutes=minute)).after
        assert case.state is state, event
    assert case.escalated and case.merchant_unreachable
    assert case.closed_reason is ClosedReason.STAFF_AGREEMENT
