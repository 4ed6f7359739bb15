"""Abuse feedback reports (ARF, RFC 5965, and Hotmail's older JMRP): a complaint against our
mail, never a bounce. Pure."""

from __future__ import annotations

import email
import re
from email.message import Message
from email.policy import compat32

from gateway.mail.bounces.base import Verdict
from gateway.mail.bounces.reasons import Reason
from gateway.mail.parse import decode

_ADDRESS_RE = re.compile(r"<?([^\s<>;\"]+@[^\s<>;\"]+)>?")


def _report_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            return part
    return None


# Microsoft's Junk Mail Reporting Program predates ARF: staff@hotmail.com sends the
# complained-about message attached, its recipient in X-HmXmrOriginalRecipient.
JMRP_FROM_RE = re.compile(r"^\s*(.*<)?staff@hotmail\.com>?\s*$", re.IGNORECASE)
JMRP_SUBJECT_RE = re.compile(r"^\s*complaint about message from\b", re.IGNORECASE)


def _jmrp_original(message: Message) -> Message | None:
    """The attached original of a Hotmail JMRP complaint, or None."""
    if not (JMRP_FROM_RE.match(decode(message.get("From"))) and JMRP_SUBJECT_RE.match(decode(message.get("Subject")))):
        return None
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if inner is not None and inner.get("X-HmXmrOriginalRecipient") is not None:
                return inner
    return None


def is_feedback(message: Message) -> bool:
    report_type = (message.get_param("report-type", header="content-type") or "")
    return str(report_type).lower() == "feedback-report" or _report_part(message) is not None \
        or _jmrp_original(message) is not None


def detect(message: Message) -> Verdict:
    """A feedback report, with the complained-about recipient when the report gives one."""
    if not is_feedback(message):
        return Verdict.none("arf")
    original = _jmrp_original(message)
    if original is not None:
        match = _ADDRESS_RE.search(decode(original.get("X-HmXmrOriginalRecipient")))
        recipient = match.group(1).lower() if match and "@" in match.group(1) else ""
        return Verdict.report(Reason.FEEDBACK, "arf", recipient=recipient, diagnostic="Hotmail JMRP complaint")
    part = _report_part(message)
    fields = _fields(part) if part is not None else email.message_from_string("", policy=compat32)
    feedback_type = decode(fields.get("Feedback-Type")).strip().lower() or "abuse"
    recipient = ""
    for name in ("Original-Rcpt-To", "Removal-Recipient"):
        match = _ADDRESS_RE.search(decode(fields.get(name)))
        if match and "@" in match.group(1):
            recipient = match.group(1).lower()
            break
    return Verdict.report(Reason.FEEDBACK, "arf", recipient=recipient, diagnostic=f"Feedback-Type: {feedback_type}")


def _fields(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    return email.message_from_string(payload if isinstance(payload, str) else "", policy=compat32)
