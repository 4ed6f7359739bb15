"""The one table of what the gateway can send: each Notice names its template folder."""

from __future__ import annotations

from enum import Enum


class Notice(str, Enum):
    """A notice and its folder under templates/ (subject.txt, body.txt, body.html per locale)."""

    ACK_DELIVERY = "ack_delivery"  # customer: case opened, merchant asked
    ACK_PAYMENT = "ack_payment"  # customer: case opened with staff, same-day answer
    ASK_CATEGORY = "ask_category"  # customer: payment or delivery?
    UNKNOWN_REFERENCE = "unknown_reference"  # sender: reference missing or unknown
    CONFIRM_COMPLAINT = "confirm_complaint"  # customer: did you write this complaint in your name? (no case yet)
    CONFIRM_MESSAGE = "confirm_message"  # customer: did you write this message about your case?
    MERCHANT_NEW_CASE = "merchant_new_case"  # merchant: a customer opened a case
    STAFF_NEW_CASE = "staff_new_case"  # staff: a case opened
    STAFF_HELD_MESSAGE = "staff_held_message"  # staff: a message was held (sender mismatch)
    STAFF_QUARANTINE = "staff_quarantine"  # staff: a message could not be processed or placed
    STAFF_QUARANTINE_DIGEST = "staff_quarantine_digest"  # staff: the others since the last report
    MERCHANT_REMINDER = "merchant_reminder"  # merchant: no answer yet (1st; 2nd with rights and escalation date)
    STAFF_REMINDER = "staff_reminder"  # staff: payment case without a staff answer
    STAFF_FOLLOWUP = "staff_followup"  # staff: a case handed to staff that nobody has taken up
    STAFF_REQUEST_REMINDER = "staff_request_reminder"  # merchant: staff wrote to you and wait for an answer
    STAFF_PAYMENT_DEADLINE = "staff_payment_deadline"  # staff: the written-answer deadline of a payment complaint
    CUSTOMER_REMINDER = "customer_reminder"  # customer: the merchant answered, we wait for you
    STAFF_ESCALATION = "staff_escalation"  # staff: the case is yours, with its whole history
    ESCALATION_CUSTOMER = "escalation_customer"  # customer: staff took over; your rights
    ESCALATION_MERCHANT = "escalation_merchant"  # merchant: staff took over; your obligations
    CASE_CLOSED = "case_closed"  # everyone involved: the case is closed, why
    CLOSED_CASE_REPLY = "closed_case_reply"  # a party wrote to a closed case
    STAFF_UNKNOWN_COMMAND = "staff_unknown_command"  # staff: the valid commands
    CARD_WINDOW_WARNING = "card_window_warning"  # customer: card-dispute windows close around day 120
    PRECLOSE_NOTICE = "preclose_notice"  # both: the case closes soon
    STAFF_DELIVERY_PROBLEM = "staff_delivery_problem"  # staff: mail to a party failed
    STAFF_CASE_FROZEN = "staff_case_frozen"  # staff: too many messages, relaying stopped
    STAFF_NOTICES_SUPPRESSED = "staff_notices_suppressed"  # staff: automatic answers to an address held back
    STAFF_EXPORT = "staff_export"  # staff: the evidence bundle #export asked for (attached, or where it is)

    @property
    def folder(self) -> str:
        return self.value


# The automatic answers held to the per-address ladder ([hygiene] notices_per_address_per_hour
# and _per_day), which stops two autoresponders from answering each other for ever: only
# answers to messages nobody has verified (the "which transaction?" answer to an intake
# message that matched no purchase of its sender; the "did you write this?" question to a
# customer in whose name an unverified message came). Acknowledgements, category questions and
# closed-case answers only ever answer a party's own message that passed the sender check:
# they are never held back (a loop through them freezes its case instead), and neither are
# the notices the gateway sends on its own schedule (new case, reminders, rights, closure).
ANSWERS = frozenset({Notice.UNKNOWN_REFERENCE, Notice.CONFIRM_COMPLAINT, Notice.CONFIRM_MESSAGE})
