"""The one table of what the gateway can send: each Notice names its template folder."""

from __future__ import annotations

from enum import Enum


class Notice(str, Enum):
    """A notice and its folder under templates/ (subject.txt, body.txt, body.html per locale)."""

    ACK_DELIVERY = "ack_delivery"  # customer: case opened, merchant asked
    ACK_PAYMENT = "ack_payment"  # customer: case opened with staff, same-day answer
    ASK_CATEGORY = "ask_category"  # customer: payment or delivery?
    UNKNOWN_REFERENCE = "unknown_reference"  # sender: reference missing or unknown
    MERCHANT_NEW_CASE = "merchant_new_case"  # merchant: a customer opened a case
    STAFF_NEW_CASE = "staff_new_case"  # staff: a case opened
    STAFF_HELD_MESSAGE = "staff_held_message"  # staff: a message was held (sender mismatch)
    STAFF_QUARANTINE = "staff_quarantine"  # staff: a message could not be processed or placed

    @property
    def folder(self) -> str:
        return self.value


# Who may receive a notice when the address is not yet known to be theirs: such notices
# never quote attacker-controlled text (subject or body).
UNVERIFIED_RECIPIENT_SAFE = frozenset({Notice.UNKNOWN_REFERENCE})
