"""Amazon SES notifications sent as JSON (through SNS, or SES's own e-mail feedback
forwarding): a bounce, a complaint or a delivery, with the recipients and the remote
server's words in machine-readable fields. Pure.

    {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent",
     "bouncedRecipients": [{"emailAddress": "...", "status": "5.1.1", "diagnosticCode": "smtp; 550 ..."}]}, ...}

SNS may deliver the notification wrapped in its own envelope, the SES object as a JSON
string in "Message" ({"Type": "Notification", "Message": "{\\"notificationType\\": ...}"}).

A "Transient" bounce is SES saying it gave up on a temporary failure (a full mailbox, a
greylisting server), never a dead address; a "Complaint" is a feedback report; a
"Delivery" is a success report.
"""

from __future__ import annotations

import json
import re
from email.message import Message

from gateway.mail.bounces.base import Failure, Verdict, failure
from gateway.mail.bounces.reasons import Reason
from gateway.mail.parts import decoded_text

_START_RE = re.compile(r'\{\s*"(notificationType|eventType)"\s*:\s*"(Bounce|Complaint|Delivery)"')
# SNS's envelope: the notification is the JSON string in its "Message" field
_SNS_START_RE = re.compile(r'\{\s*"Type"\s*:\s*"Notification"\s*,')
_SNS_INNER_RE = re.compile(r'"Message"\s*:\s*"\{\\"(notificationType|eventType)\\"\s*:\s*\\"(Bounce|Complaint|Delivery)\\"')
_DECODER = json.JSONDecoder(strict=False)  # SNS folds long header values with a raw line break


def _text(message: Message) -> str:
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        text = decoded_text(part)  # UTF-8 for a charset Python does not know (cPanel's "ansi_x3.110-1983")
        if text is not None:
            return text
    return ""


def is_notice(text: str) -> bool:
    """Whether `text` starts like an SES notification, bare or in SNS's envelope."""
    head = text[:4096]
    return bool(_START_RE.match(head.lstrip()) or (_SNS_START_RE.match(head.lstrip()) and _SNS_INNER_RE.search(head)))


def notice(message: Message) -> dict | None:
    """The notification's JSON object, when the message carries one."""
    text = _text(message)
    match = _START_RE.search(text[:4096]) or _SNS_START_RE.search(text[:4096])
    if not match:
        return None
    try:
        value, _ = _DECODER.raw_decode(text, match.start())
    except ValueError:
        return None
    if isinstance(value, dict) and value.get("Type") == "Notification" and isinstance(value.get("Message"), str):
        try:
            value = _DECODER.decode(value["Message"])
        except ValueError:
            return None
    if not isinstance(value, dict) or not (value.get("notificationType") or value.get("eventType")):
        return None
    return value


def _address(entry) -> str:
    value = entry.get("emailAddress", "") if isinstance(entry, dict) else str(entry)
    match = re.search(r"[^\s<>\"]+@[^\s<>\"]+", str(value))
    return match.group(0).lower().strip(".") if match else ""


def detect(message: Message) -> Verdict:
    data = notice(message)
    if data is None:
        return Verdict.none("ses")
    kind = str(data.get("notificationType") or data.get("eventType"))
    if kind == "Complaint":
        complaint = data.get("complaint") or {}
        recipients = [_address(e) for e in complaint.get("complainedRecipients") or ()]
        return Verdict.report(Reason.FEEDBACK, "ses", recipient=next((r for r in recipients if r), ""),
                              diagnostic=str(complaint.get("complaintFeedbackType") or "complaint"))
    if kind == "Delivery":
        delivery = data.get("delivery") or {}
        found = tuple(Failure(a, Reason.DELIVERED, "2.0.0", str(delivery.get("smtpResponse") or "") or None)
                      for a in (_address(e) for e in delivery.get("recipients") or ()) if a)
        return Verdict(found or (Failure("", Reason.DELIVERED),), "ses")
    bounce = data.get("bounce") or {}
    transient = str(bounce.get("bounceType", "")).lower() == "transient"
    out = []
    for entry in bounce.get("bouncedRecipients") or ():
        address = _address(entry)
        if not address:
            continue
        status = str(entry.get("status") or "") or None
        words = str(entry.get("diagnosticCode") or "") or str(bounce.get("bounceSubType") or "")
        one = failure(address, status, words)
        if transient and one.permanent:  # SES itself says the failure was temporary
            one = Failure(one.recipient, one.reason, one.status, one.diagnostic, False, one.remote_mta)
        out.append(one)
    return Verdict(tuple(out), "ses")
