"""Reasons a known appliance states in its own words, read only in reports it wrote. Pure.

Most remote servers' words mean the same whoever writes them (reasons.py). A few mail
gateways check recipients themselves and word the answer their own way; in a report that
carries their mark those words are certain, elsewhere they are not (qmail's "550 unknown
user <a>" may come from a filter after DATA, and is read as one).

McAfee Email Gateway (X-NAI-Header: Modified by McAfee ..., subject "Delivery Status")
validates each recipient against the directory before accepting the message: its
"550 Unknown user a@b" answers RCPT for that address.

Verizon Wireless's MMS gateway (From: sysadmin@...vzwpix.com) writes "No valid recipients
for this MM" when the phone number it was sent to has no mailbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.message import Message

from gateway.mail.bounces.base import Verdict
from gateway.mail.bounces.reasons import Reason


@dataclass(frozen=True)
class Vendor:
    name: str
    header: str  # the header that marks the vendor's reports
    mark: re.Pattern[str]  # what that header says
    reasons: tuple[tuple[Reason, re.Pattern[str]], ...]  # the vendor's words, in its diagnostics


VENDORS = (
    Vendor("McAfee", "X-NAI-Header", re.compile(r"modified by mcafee", re.IGNORECASE), (
        (Reason.USER_UNKNOWN, re.compile(
            r"\buser \(.+@.+\) unknown\.|\b550 unknown user [^\s@]+@[^\s]+|\b550 <.+?@.+?>\.+ user not exist|"
            r"\bno such user\b", re.IGNORECASE)),
    )),
    Vendor("Verizon Wireless MMS", "From", re.compile(r"\bsysadmin@([\w-]+\.)*vzwpix\.com\b", re.IGNORECASE), (
        (Reason.USER_UNKNOWN, re.compile(r"\bno valid recipients for this mm\b", re.IGNORECASE)),
    )),
)


def vendor_of(message: Message) -> Vendor | None:
    for vendor in VENDORS:
        if vendor.mark.search(str(message.get(vendor.header, ""))):
            return vendor
    return None


def refine(message: Message, verdict: Verdict) -> Verdict:
    """`verdict` with each permanent failure's reason read in its vendor's words, when a
    known appliance wrote the report; unchanged otherwise."""
    vendor = vendor_of(message)
    if vendor is None or not verdict:
        return verdict
    failures = []
    for entry in verdict.failures:
        if entry.kind.failed and entry.permanent:
            reason = next((r for r, words in vendor.reasons if words.search(entry.diagnostic or "")), None)
            if reason is not None:
                entry = replace(entry, reason=reason)
        failures.append(entry)
    return Verdict(tuple(failures), verdict.detected_by)
