"""RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status). Pure."""

from __future__ import annotations

import email
import re
from email.message import Message
from email.policy import compat32

from gateway.mail.parse import decode
from gateway.mail.bounces.base import Failure, FailureKind, Verdict, classify_status

MAX_RECIPIENT_BLOCKS = 100  # we send to one recipient per message: a report on more is not about ours
_ADDRESS_RE = re.compile(r"<?([^\s<>;]+@[^\s<>;]+?)>?\s*$")


def _status_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return part
    return None


def _fields_blocks(part: Message) -> list[Message]:
    """The per-message and per-recipient field groups of a delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parses the groups as sub-messages
        return payload
    text = payload if isinstance(payload, str) else ""
    return [email.message_from_string(block, policy=compat32) for block in re.split(r"\r?\n\r?\n", text) if block.strip()]


def _field(block: Message, name: str) -> str:
    """A DSN field as text (raw 8-bit bytes are read as UTF-8, never raised on)."""
    return " ".join(decode(block.get(name)).split())


def _address(value: str | None) -> str:
    value = (value or "").strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    match = _ADDRESS_RE.search(value.strip())
    return match.group(1).lower().strip(".") if match else ""


def detect(message: Message) -> Verdict:
    """Failures reported by a DSN; empty when the message is not one."""
    part = _status_part(message)
    if part is None:
        return Verdict.none("dsn")
    failures = []
    for block in _fields_blocks(part)[:MAX_RECIPIENT_BLOCKS]:
        # Original-Recipient is the address as we sent it; Final-Recipient may be an internal alias
        recipient = _address(_field(block, "Original-Recipient")) or _address(_field(block, "Final-Recipient"))
        action = _field(block, "Action").lower()
        if not recipient or not action:
            continue
        status = _field(block, "Status").split(" ")[0] or None
        diagnostic = _field(block, "Diagnostic-Code") or None
        if action.startswith("delayed"):
            failures.append(Failure(recipient, FailureKind.DELAYED, status, diagnostic))
        elif action.startswith("failed"):
            failures.append(Failure(recipient, classify_status(status, diagnostic, gave_up=True), status, diagnostic))
    return Verdict(tuple(failures), "dsn")
