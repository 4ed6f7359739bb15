"""What a case notice's template receives, and a case's subject line. Pure: values in, values out."""

from __future__ import annotations

import re

from gateway.config import Settings
from gateway.mail.compose import header_text
from gateway.mail.headers import REPLY_PREFIX_RE
from gateway.models import Case, Merchant, Transaction

_TAG_RE = re.compile(r"\[(case|dossier)\s+[a-z2-7]+\]\s*", re.IGNORECASE)


def clean_subject(subject: str) -> str:
    """A case subject from a message subject: no reply prefixes, no case tag, no control
    characters, bounded."""
    subject = _TAG_RE.sub("", REPLY_PREFIX_RE.sub("", header_text(subject or ""))).strip()
    return " ".join(subject.split())[:150] or "Dispute"


def case_subject(case: Case, *, reply: bool = True) -> str:
    tagged = f"[Case {case.reference.upper()}] {case.subject}"
    return f"Re: {tagged}" if reply else tagged


def build_case_context(case: Case, tx: Transaction | None, merchant: Merchant | None, *, party: str, brand: str,
                       case_addresses: dict[str, str]) -> dict:
    """The template context of a case notice for `party`. Pure: values in, dict out."""
    return {
        "brand": brand,
        "recipient_role": {"c": "customer", "m": "merchant", "s": "staff"}[party],
        "case": {
            "reference": case.reference.upper(),
            "subject": case.subject,
            "category": case.category or "",
            "dispute_type": case.dispute_type,
            "state": case.state,
            "escalated": case.escalated,
            "opened_at": case.opened_at,
            "customer_address": case_addresses["c"],
            "merchant_address": case_addresses["m"],
            "staff_address": case_addresses["s"],
        },
        "transaction": {
            "reference": tx.reference if tx else case.transaction_reference,
            "date": tx.transaction_date if tx else case.opened_at,
            "amount": tx.amount if tx else 0,
            "currency": tx.currency if tx else "",
            "customer_name": tx.customer_name if tx else "",
        },
        "merchant": {"name": merchant.name if merchant else case.merchant_id, "id": case.merchant_id},
    }


def timer_context(settings: Settings) -> dict:
    """The delays notices quote, from [timers], so a text never promises what is not configured."""
    timers = settings.timers
    return {
        "first_reminder_business_days": (timers.merchant_reminder_business_days or (0,))[0],
        "escalation_business_days": timers.escalation_business_days,
        "autoclose_days": timers.autoclose_days,
        "autoclose_quiet_days": timers.autoclose_quiet_days,
    }
