"""The case state machine: a transition table and a pure `apply`. States say who must act next.

Beside the states, two flags change by events of their own (`FLAGS`, applied by `flag`): a
case frozen by a flood, and a merchant address that works again."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Mapping


class CaseState(str, Enum):
    NEEDS_INFO = "needs_info"
    AWAITING_MERCHANT = "awaiting_merchant"
    AWAITING_CUSTOMER = "awaiting_customer"
    WITH_STAFF = "with_staff"
    CLOSED = "closed"


class EventKind(str, Enum):
    CATEGORY_DELIVERY = "category_delivery"
    CATEGORY_PAYMENT = "category_payment"
    CUSTOMER_REPLIED = "customer_replied"
    MERCHANT_REPLIED = "merchant_replied"
    STAFF_WROTE = "staff_wrote"
    ESCALATED = "escalated"
    MERCHANT_BOUNCED = "merchant_bounced"
    RESOLVED = "resolved"
    STAFF_CLOSED = "staff_closed"
    EXPIRED = "expired"
    REOPENED = "reopened"
    # flag events (FLAGS): no change of state
    CASE_FROZEN = "case_frozen"
    CASE_UNFROZEN = "case_unfrozen"
    MERCHANT_ADDRESS_CLEARED = "merchant_address_cleared"
    DELIVERY_RETRIED = "delivery_retried"
    # events that record what happened and change nothing (casework/record.note)
    CASE_EXPORTED = "case_exported"
    CASE_OPENED = "case_opened"
    COMPLAINT_RECEIVED = "complaint_received"
    CONTENT_FILTERED = "content_filtered"
    CUSTOMER_CONFIRMED = "customer_confirmed"
    DELIVERY_CONFIRMED = "delivery_confirmed"
    DELIVERY_DELAYED = "delivery_delayed"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERY_PROBLEM = "delivery_problem"
    DELIVERY_PROBLEM_NOTIFIED = "delivery_problem_notified"
    DELIVERY_TROUBLE_CLEARED = "delivery_trouble_cleared"
    FROZEN_MESSAGE_KEPT = "frozen_message_kept"
    LOOP_DROPPED = "loop_dropped"
    MAIL_TO_CLOSED_CASE = "mail_to_closed_case"
    MESSAGE_HELD = "message_held"
    MESSAGE_LIMITED = "message_limited"
    MESSAGE_RECEIVED = "message_received"
    MESSAGE_REJECTED = "message_rejected"
    MESSAGE_RELEASED = "message_released"
    NOTICE_SENT = "notice_sent"
    NOTICE_SUPPRESSED = "notice_suppressed"
    OLD_ADDRESS_FAILED = "old_address_failed"
    RELAYED = "relayed"
    RELEASE_REFUSED = "release_refused"
    REOPEN_REFUSED = "reopen_refused"
    RETRY_REFUSED = "retry_refused"
    SENDER_UNVERIFIED = "sender_unverified"
    STAFF_NOTE = "staff_note"
    TYPE_SET = "type_set"
    # automatic mail recorded, by its kind (mail/classify.Kind) or report reason (VACATION, CHALLENGE)
    HUMAN_RECORDED = "human_recorded"
    LOOP_RECORDED = "loop_recorded"
    BOUNCE_RECORDED = "bounce_recorded"
    AUTO_REPLY_RECORDED = "auto_reply_recorded"
    LIST_RECORDED = "list_recorded"
    VACATION_RECORDED = "vacation_recorded"
    CHALLENGE_RECORDED = "challenge_recorded"
    # a timer that ran (gateway/cases/timers.py)
    TIMER_MERCHANT_REMINDER = "timer_merchant_reminder"
    TIMER_ESCALATION = "timer_escalation"
    TIMER_STAFF_REMINDER = "timer_staff_reminder"
    TIMER_STAFF_FOLLOWUP = "timer_staff_followup"
    TIMER_STAFF_REQUEST_REMINDER = "timer_staff_request_reminder"
    TIMER_PAYMENT_ANSWER_DUE = "timer_payment_answer_due"
    TIMER_CUSTOMER_REMINDER = "timer_customer_reminder"
    TIMER_CARD_WINDOW = "timer_card_window"
    TIMER_PRECLOSE = "timer_preclose"
    TIMER_AUTOCLOSE = "timer_autoclose"
    TIMER_CATEGORY_REMINDER = "timer_category_reminder"
    TIMER_CATEGORY_ESCALATION = "timer_category_escalation"

    @classmethod
    def recorded(cls, what: str) -> "EventKind":
        """The event of automatic mail of kind (or report reason) `what`, recorded, not relayed."""
        return cls(f"{what}_recorded")

    @classmethod
    def timer(cls, kind: str) -> "EventKind":
        """The event of a timer of `kind` that ran."""
        return cls(f"timer_{kind}")


class ClosedReason(str, Enum):
    CUSTOMER_RESOLVED = "customer_resolved"
    STAFF_AGREEMENT = "staff_agreement"
    EXPIRED = "expired"


S, E = CaseState, EventKind
_OPEN = (S.NEEDS_INFO, S.AWAITING_MERCHANT, S.AWAITING_CUSTOMER, S.WITH_STAFF)

TRANSITIONS: Mapping[tuple[CaseState, EventKind], CaseState] = {
    (S.NEEDS_INFO, E.CATEGORY_DELIVERY): S.AWAITING_MERCHANT,
    (S.NEEDS_INFO, E.CATEGORY_PAYMENT): S.WITH_STAFF,
    (S.NEEDS_INFO, E.CUSTOMER_REPLIED): S.NEEDS_INFO,
    (S.AWAITING_MERCHANT, E.MERCHANT_REPLIED): S.AWAITING_CUSTOMER,
    (S.AWAITING_MERCHANT, E.CUSTOMER_REPLIED): S.AWAITING_MERCHANT,
    (S.AWAITING_CUSTOMER, E.CUSTOMER_REPLIED): S.AWAITING_MERCHANT,
    (S.AWAITING_CUSTOMER, E.MERCHANT_REPLIED): S.AWAITING_CUSTOMER,
    (S.WITH_STAFF, E.CUSTOMER_REPLIED): S.WITH_STAFF,
    (S.WITH_STAFF, E.MERCHANT_REPLIED): S.WITH_STAFF,
    # Staff write alongside the parties: who owes the next answer does not change (a staff
    # question to the customer must not cancel the chase on a silent merchant).
    **{(state, E.STAFF_WROTE): state for state in _OPEN},
    **{(state, E.ESCALATED): S.WITH_STAFF for state in _OPEN},
    **{(state, E.MERCHANT_BOUNCED): S.WITH_STAFF for state in _OPEN},
    **{(state, E.RESOLVED): S.CLOSED for state in _OPEN},
    **{(state, E.STAFF_CLOSED): S.CLOSED for state in _OPEN},
    **{(state, E.EXPIRED): S.CLOSED for state in _OPEN},
    (S.CLOSED, E.REOPENED): S.WITH_STAFF,
}

# Events that raise the `escalated` flag (staff cc'd from then on). A case staff reopen is
# theirs: they are copied on what the parties write next.
ESCALATING = frozenset({E.ESCALATED, E.MERCHANT_BOUNCED, E.REOPENED})
CLOSED_REASONS: Mapping[EventKind, ClosedReason] = {
    E.RESOLVED: ClosedReason.CUSTOMER_RESOLVED,
    E.STAFF_CLOSED: ClosedReason.STAFF_AGREEMENT,
    E.EXPIRED: ClosedReason.EXPIRED,
}
# The flags a flag event sets, whatever the state (staff clear a merchant's address, or send
# again what failed, on closed cases too).
FLAGS: Mapping[EventKind, Mapping[str, bool]] = {
    E.CASE_FROZEN: {"frozen": True},
    E.CASE_UNFROZEN: {"frozen": False},
    E.MERCHANT_ADDRESS_CLEARED: {"merchant_unreachable": False},
    E.DELIVERY_RETRIED: {"merchant_unreachable": False},
}


@dataclass(frozen=True)
class CaseView:
    """What the machine needs to know of a case."""

    state: CaseState
    escalated: bool = False
    merchant_unreachable: bool = False
    closed_reason: ClosedReason | None = None
    waiting_since: datetime | None = None
    frozen: bool = False


@dataclass(frozen=True)
class Outcome:
    before: CaseView
    after: CaseView
    applied: bool
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.before != self.after


def apply(case: CaseView, kind: EventKind, *, now: datetime) -> Outcome:
    """The case after `kind` happened at `now`; unchanged (applied=False) when not allowed."""
    target = TRANSITIONS.get((case.state, kind))
    if target is None:
        return Outcome(case, case, applied=False, note=f"{kind.value} ignored in {case.state.value}")
    after = replace(
        case,
        state=target,
        escalated=case.escalated or kind in ESCALATING,
        merchant_unreachable=case.merchant_unreachable or kind is E.MERCHANT_BOUNCED,
        closed_reason=CLOSED_REASONS.get(kind) if target is S.CLOSED else None,
        waiting_since=now if target != case.state else case.waiting_since,
    )
    return Outcome(case, after, applied=True)


def flag(case: CaseView, kind: EventKind) -> Outcome:
    """The case after the flag event `kind`; refused (applied=False) for any other kind."""
    changes = FLAGS.get(kind)
    if changes is None:
        return Outcome(case, case, applied=False, note=f"{kind.value} is not a flag event")
    return Outcome(case, replace(case, **changes), applied=True)
