"""Reasons a known appliance states in its own words, read only in reports it wrote. Pure.

Most remote servers' words mean the same whoever writes them (reasons.py). A few mail
gateways check recipients themselves and word the answer their own way; in a report that
carries their mark those words are certain, elsewhere they are not (qmail's "550 unknown
user <a>" may come from a filter after DATA, and is read as one).

McAfee Email Gateway (X-NAI-Header: Modified by McAfee ..., subject "Delivery Status")
validates each recipient against the directory before accepting the message: its
"550 Unknown user a@b" answers RCPT for that address.

Verizon Wireless's MMS gateway (From: sysadmin@...vzwpix.com) writes "No valid recipients
for this MM" when the phone number it was sent to has no mailbox; its SMS gateway (From:
post_master@vtext.com) "550 - Requested action not taken: no such user here".

Ipswitch IMail (X-Mailer: <SMTP32 v...>) writes "Unknown user: a@b" for a mailbox its own
directory does not have, and "User mailbox exceeds allowed size: a@b" for a full one (not
a message too big).

Symantec.cloud/MessageLabs (X-Msg-Ref from MAILER-DAEMON@messagelabs.com) checks
recipients for the domains it fronts: its "550 a@b... No such user" is that check, and so
is the bare "542 a@b Rejected" it writes for an address its directory of the domain's valid
recipients does not list.

Google (From: mailer-daemon@googlemail.com) heads a report "Address not found" and writes
"because the address couldn't be found" when the receiving server refused the mailbox at
RCPT; when it quotes the remote server's reply, that reply is the diagnostic and is read.
Its older reports say why it gave up retrying ("The recipient server did not accept our
requests to connect", "Could not contact DNS servers"): an expiry. Gmail's older reports end the quoted reply with the SMTP step it answered, "(state 18)".

Amazon SES's receiving side (X-SES-Outgoing, "This message could not be delivered.")
bounces with a canned template that the receiving domain's own rule set chose: its
"Mailbox does not exist" is a rule's action, not proof of a missing mailbox (a filter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.message import Message

from gateway.mail.bounces.base import Verdict
from gateway.mail.bounces.reasons import Reason
from gateway.mail.bounces.textual import window


@dataclass(frozen=True)
class Vendor:
    name: str
    header: str  # the header that marks the vendor's reports
    mark: re.Pattern[str]  # what that header says
    reasons: tuple[tuple[Reason, re.Pattern[str]], ...]  # the vendor's words, in its diagnostics
    text_mark: re.Pattern[str] | None = None  # what the report's text must also say, if anything


VENDORS = (
    Vendor("McAfee", "X-NAI-Header", re.compile(r"modified by mcafee", re.IGNORECASE), (
        (Reason.USER_UNKNOWN, re.compile(
            r"\buser \(.+@.+\) unknown\.|\b550 unknown user [^\s@]+@[^\s]+|\b550 <.+?@.+?>\.+ user not exist|"
            r"\bno such user\b", re.IGNORECASE)),
    )),
    Vendor("Verizon Wireless MMS", "From", re.compile(r"\bsysadmin@([\w-]+\.)*vzwpix\.com\b", re.IGNORECASE), (
        (Reason.USER_UNKNOWN, re.compile(r"\bno valid recipients for this mm\b", re.IGNORECASE)),
    )),
    Vendor("Verizon Wireless SMS", "From", re.compile(r"\bpost_master@vtext\.com\b", re.IGNORECASE), (
        (Reason.USER_UNKNOWN, re.compile(r"\b550 - requested action not taken: no such user here\b", re.IGNORECASE)),
    )),
    Vendor("Ipswitch IMail", "X-Mailer", re.compile(r"^\s*<SMTP32 v", re.IGNORECASE), (
        (Reason.MAILBOX_FULL, re.compile(r"^user mailbox exceeds allowed size: \S+@\S+", re.IGNORECASE)),
        (Reason.USER_UNKNOWN, re.compile(r"^(unknown user|invalid final delivery userid): \S+@\S+", re.IGNORECASE)),
    )),
    Vendor("MessageLabs", "X-Msg-Ref", re.compile(r"\.messagelabs\.com!", re.IGNORECASE), (
        (Reason.USER_UNKNOWN, re.compile(r"\b550 \S+@\S+\.\.\. no such user\b|^\s*(smtp; ?)?542 \S+@\S+ rejected\s*$",
                                         re.IGNORECASE | re.MULTILINE)),
    ), re.compile(r"mailer-daemon@messagelabs\.com", re.IGNORECASE)),
    Vendor("Google", "From", re.compile(r"<mailer-daemon@googlemail\.com>", re.IGNORECASE), (
        (Reason.USER_UNKNOWN, re.compile(r"\bbecause the address couldn'?t be found\b", re.IGNORECASE)),
        # its older reports name why it gave up after retrying: no connection, no DNS answer
        (Reason.EXPIRED, re.compile(r"\bthe recipient server did not accept our requests to connect\b|"
                                    r"\bdns error: could not contact dns servers\b", re.IGNORECASE)),
        # Gmail names the SMTP step the remote server refused: states 15, 17 and 18 are DATA
        # (the content, after the recipients were accepted), 13 the greeting
        (Reason.FILTERED, re.compile(r"\(state 1[578]\)")),
        (Reason.BLOCKED, re.compile(r"\(state 13\)")),
    )),
    Vendor("Amazon SES receiving", "X-SES-Outgoing", re.compile(r"\S"), (
        (Reason.FILTERED, re.compile(r"\bmailbox does not exist\b", re.IGNORECASE)),
    ), re.compile(r"^This message could not be delivered\.$", re.MULTILINE)),
)


def vendor_of(message: Message, text: str = "") -> Vendor | None:
    for vendor in VENDORS:
        if vendor.mark.search(str(message.get(vendor.header, ""))):
            if vendor.text_mark is None or vendor.text_mark.search(text) or vendor.text_mark.search(
                    str(message.get("From", ""))):
                return vendor
    return None


def refine(message: Message, verdict: Verdict, text: str = "") -> Verdict:
    """`verdict` with each permanent failure's reason read in its vendor's words, when a
    known appliance wrote the report; unchanged otherwise. The words are a DSN's
    Diagnostic-Code (the remote server's reply), else the report's text about the recipient."""
    vendor = vendor_of(message, text)
    if vendor is None or not verdict:
        return verdict
    failures = []
    for entry in verdict.failures:
        if entry.kind.failed and entry.permanent:
            words = entry.diagnostic or ""
            if not (words and verdict.detected_by.startswith("dsn")):  # a report written for people
                words += "\n" + window(text, entry.recipient)
            reason = next((r for r, pattern in vendor.reasons if pattern.search(words)), None)
            if reason is not None:
                entry = replace(entry, reason=reason)
        failures.append(entry)
    return Verdict(tuple(failures), verdict.detected_by)
