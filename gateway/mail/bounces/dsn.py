"""RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status),
RFC 6533 global DSNs, and DSN fields found in a report whose MIME structure is broken. Pure.

Every recipient block is read, failed or not: `Action: delivered/relayed/expanded` is
delivery evidence, `delayed` a warning, `failed` a failure with its reason.
"""

from __future__ import annotations

import email
import re
from dataclasses import replace
from email.message import Message
from email.policy import compat32

from gateway.mail.bounces.base import Failure, Verdict, failure
from gateway.mail.bounces.reasons import Reason
from gateway.mail.parse import decode

MAX_RECIPIENT_BLOCKS = 100  # we send to one recipient per message: a report on more is not about ours
_ADDRESS_RE = re.compile(r"<?([^\s<>;\"]+@[^\s<>;\"]+?)>?\s*$")
_FIELDS_RE = re.compile(r"^(final-recipient|original-recipient|action|status|diagnostic-code|remote-mta)\s*:",
                        re.IGNORECASE | re.MULTILINE)
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_SUCCESS = {"delivered": Reason.DELIVERED, "relayed": Reason.DELIVERED, "expanded": Reason.EXPANDED}
# The sending MTA's own classification of a failure, a field of its recipient block
# (PowerMTA's X-PowerMTA-BounceCategory): it has read the whole SMTP conversation.
_CATEGORY_FIELDS = ("X-PowerMTA-BounceCategory",)
_CATEGORIES = {
    "bad-mailbox": Reason.USER_UNKNOWN, "bad-domain": Reason.HOST_UNKNOWN, "inactive-mailbox": Reason.SUSPEND,
    "quota-issues": Reason.MAILBOX_FULL, "message-expired": Reason.EXPIRED, "no-answer-from-host": Reason.NETWORK_ERROR,
    "bad-connection": Reason.NETWORK_ERROR, "routing-errors": Reason.SYSTEM_ERROR, "protocol-errors": Reason.SYSTEM_ERROR,
    "relaying-issues": Reason.NO_RELAYING, "spam-related": Reason.SPAM, "virus-related": Reason.VIRUS,
    "content-related": Reason.CONTENT_ERROR, "policy-related": Reason.POLICY, "invalid-sender": Reason.REJECTED,
}


def _status_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in _STATUS_TYPES:
            return part
    return None


def _fields_blocks(part: Message) -> list[Message]:
    """The per-message and per-recipient field groups of a delivery-status part, one group
    per recipient even where the blank lines between them are missing (AOL)."""
    return [group for block in _raw_blocks(part) for group in _per_recipient(block)]


_RECIPIENT_FIELDS = ("final-recipient", "original-recipient")


def _per_recipient(block: Message) -> list[Message]:
    """`block` cut where a recipient field it already has appears again: a new recipient."""
    names = [name.lower() for name in block.keys()]
    if all(names.count(f) < 2 for f in _RECIPIENT_FIELDS):
        return [block]
    groups: list[list[tuple[str, str]]] = [[]]
    for name, value in block.items():
        if name.lower() in _RECIPIENT_FIELDS and any(n.lower() == name.lower() for n, _ in groups[-1]):
            groups.append([])
        groups[-1].append((name, value))
    out = []
    for fields in groups:
        group = Message()
        for name, value in fields:
            group[name] = value
        out.append(group)
    return out


def _raw_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parses the groups as sub-messages
        if len(payload) > 1 or not _looks_like_text(payload):
            return [block for group in payload for block in _whole(group)]
        payload = payload[0].as_string()
    if isinstance(payload, str) and part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        raw = part.get_payload(decode=True)
        payload = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else payload
    return _blocks_from_text(payload if isinstance(payload, str) else "")


def _whole(group: Message) -> list[Message]:
    """A field group whose parsing stopped at a line that is no field (an SMTP reply's
    unindented "550-" lines under Diagnostic-Code, MessageLabs): its fields read again
    with the rest, which the email package left as the group's body."""
    body = group.get_payload()
    if not isinstance(body, str) or not _FIELDS_RE.search(body):
        return [group]
    fields = "".join(f"{name}: {value}\n" for name, value in group.items())
    return _blocks_from_text(_unwrap(fields + body))


def _looks_like_text(payload: list) -> bool:
    return bool(payload) and not payload[0].keys()


def _blocks_from_text(text: str) -> list[Message]:
    return [email.message_from_string(block.strip("\n") + "\n", policy=compat32)
            for block in re.split(r"\n[ \t]*\n", text) if block.strip()]


def _field(block: Message, name: str) -> str:
    """A DSN field as text (raw 8-bit bytes read as UTF-8, RFC 2047 and xtext decoded)."""
    value = " ".join(decode(block.get(name)).split())
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value) if "+" in value else value


def _address(value: str | None) -> str:
    value = (value or "").strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    match = _ADDRESS_RE.search(value.strip())
    return match.group(1).lower().strip(".") if match else ""


def read_blocks(blocks: list[Message], text: str = "") -> tuple[Failure, ...]:
    """One entry per recipient block that names a recipient and an action (the first
    block per recipient: some MTAs repeat them). `text` is the report's text for people,
    read for the recipient's reason when the Diagnostic-Code says little."""
    from gateway.mail.bounces.textual import window

    reports, seen = [], set()
    for block in blocks[:MAX_RECIPIENT_BLOCKS]:
        # Original-Recipient is the address as we sent it (what our outbox holds); Final-
        # Recipient, when different, the internal mailbox or alias target it was rewritten to
        final = _address(_field(block, "Final-Recipient"))
        recipient = _address(_field(block, "Original-Recipient")) or final
        final_mailbox = final if final and final != recipient else None
        action = _field(block, "Action").lower()
        if not recipient or not action or recipient in seen:
            continue
        seen.add(recipient)
        context = window(text, recipient) if text else ""
        status = (_field(block, "Status").split(" ")[0] or None)
        diagnostic = _field(block, "Diagnostic-Code") or None
        remote = _field(block, "Remote-MTA") or None
        verb = action.split()[0].strip("();,")
        if verb in _SUCCESS:
            reports.append(Failure(recipient, _SUCCESS[verb], status, diagnostic, False, remote, final_mailbox))
        elif verb.startswith("delayed"):
            reports.append(replace(failure(recipient, status, diagnostic, gave_up=False, remote_mta=remote,
                                           context=context), final_recipient=final_mailbox))
        elif verb.startswith("failed") or verb == "failure":
            one = replace(failure(recipient, status, diagnostic, remote_mta=remote, context=context),
                          final_recipient=final_mailbox)
            category = next((_CATEGORIES.get(_field(block, name).lower()) for name in _CATEGORY_FIELDS
                             if _field(block, name)), None)
            if category is not None:
                one = replace(one, reason=category)
            reports.append(one)
    return tuple(reports)


def detect(message: Message, text: str = "") -> Verdict:
    """What a DSN reports per recipient; empty when the message is not one."""
    part = _status_part(message)
    if part is not None:
        return Verdict(read_blocks(_fields_blocks(part), text), "dsn")
    return Verdict.none("dsn")


def detect_in_text(text: str) -> Verdict:
    """DSN fields written inline (a broken MIME boundary, Amazon WorkMail's technical
    report in the text part): read when there are both Final-Recipient and Action."""
    if len({m.group(1).lower() for m in _FIELDS_RE.finditer(text)} & {"final-recipient", "action"}) < 2:
        return Verdict.none("dsn-text")
    start = min(m.start() for m in _FIELDS_RE.finditer(text))
    return Verdict(read_blocks(_blocks_from_text(_unwrap(text[start:])), text[:start]), "dsn-text")


_MULTILINE_REPLY_RE = re.compile(r"^[245]\d\d[ -]")


def _unwrap(text: str) -> str:
    """Drop text lines between DSN fields that are neither a field nor a continuation. A
    multi-line SMTP reply written under Diagnostic-Code without indentation ("550-..." on
    each line, MessageLabs) is its continuation."""
    lines: list[str] = []
    diagnostic = False
    for line in text.splitlines():
        if diagnostic and _MULTILINE_REPLY_RE.match(line):
            lines.append(" " + line)
            continue
        if not line.strip() or line[:1] in " \t" or re.match(r"^[A-Za-z][\w-]*\s*:", line):
            lines.append(line)
            if line.strip() and line[:1] not in " \t":
                diagnostic = line.lower().startswith("diagnostic-code")
            elif not line.strip():
                diagnostic = False
        else:
            lines.append("")
            diagnostic = False
    return "\n".join(lines)
