"""Reasons that certain receiving services write as their own codes. Pure.

A few large mailbox providers and filtering services answer every refusal with the same
status code and put the real reason in a code of their own (cox.net's "AUP#CXBL",
Spectrum's "AUP#In-1310", GoDaddy's "IB607") or in a fixed phrase (Mimecast). Their
published tables say what each means; those meanings are certain for their servers and
only there. The service is known by the host that answered (a DSN's Remote-MTA) or by the
recipient's domain, as a mature analyser (Sisimai's Rhost classes) does.

NTT docomo's mail servers refuse with "550 Unknown user" after DATA when the recipient's
own settings refuse the sender's domain: with a bare 5.0.0 after DATA, that is a refused
sender, not a missing mailbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable

from gateway.mail.bounces.base import Failure, Verdict
from gateway.mail.bounces.reasons import Reason
from gateway.mail.bounces.textual import window

B, R, S, T = Reason.BLOCKED, Reason.REJECTED, Reason.SECURITY_ERROR, Reason.TOO_MANY_CONN


def _cox(diagnostic: str) -> Reason | None:
    """cox.net's AUP# codes (its "email error codes" page)."""
    match = re.search(r"\bAUP#([0-9A-Z]+)", diagnostic)
    code = match.group(1) if match else ""
    for prefix, reason in (("CXBL", B), ("CDRBL", B), ("CXDNS", B), ("IPBL", B), ("URLBL", Reason.SPAM),
                           ("CXTHRT", S), ("CXMJ", S), ("CXSNDR", R), ("CXSMTP", R), ("CXCNCT", T), ("CXMXRT", T)):
        if code.startswith(prefix):
            return reason
    return None


# Spectrum (charter.net): AUP# four-digit codes, by range (its "understanding email error codes" page)
_SPECTRUM_RANGES = ((1000, 1000, B), (1010, 1080, R), (1090, 1090, Reason.SYSTEM_ERROR),
                    (1100, 1150, B), (1160, 1190, Reason.POLICY), (1200, 1250, B),
                    (1260, 1260, Reason.NETWORK_ERROR), (1300, 1490, T), (1500, 1520, R),
                    (1530, 1530, Reason.MESSAGE_TOO_BIG), (1540, 1550, T), (1560, 1560, Reason.POLICY))


def _spectrum(diagnostic: str) -> Reason | None:
    match = re.search(r"\bAUP#[A-Za-z-]*(\d{4})\b", diagnostic)
    if not match:
        return None
    number = int(match.group(1))
    return next((reason for low, high, reason in _SPECTRUM_RANGES if low <= number <= high), None)


# GoDaddy (secureserver.net): IB codes at the end of its replies
_GODADDY = {"IB007": T, "IB101": Reason.EXPIRED, "IB103": B, "IB104": B, "IB105": B, "IB106": B, "IB108": B,
            "IB110": B, "IB111": B, "IB112": B, "IB113": B, "IB212": Reason.SPAM, "IB401": S, "IB501": R,
            "IB502": R, "IB504": T, "IB506": R, "IB508": Reason.AUTH_FAILURE, "IB510": T, "IB607": T, "IB705": Reason.VIRUS}


def _godaddy(diagnostic: str) -> Reason | None:
    match = re.search(r"\b(IB\d{3})\b", diagnostic)
    return _GODADDY.get(match.group(1)) if match else None


# Mimecast: its fixed phrases (lower case) for refusals that its 5xx codes do not tell apart
_MIMECAST = (
    ("host network not allowed", Reason.POLICY), ("anti-spoofing policy", Reason.POLICY),
    ("content examination policy", Reason.POLICY), ("email rejected due to security policies", Reason.VIRUS),
    ("ip reputation", B), ("ip temporarily blacklisted", B), ("sender address blocked", B),
    ("envelope blocked", R), ("blocked senders", R), ("block policy for envelope from", R),
    ("maximum email size exceeded", Reason.MESSAGE_TOO_BIG), ("mail loop detected", Reason.NETWORK_ERROR),
    ("open relay not allowed", Reason.NO_RELAYING), ("this route requires", S),
    ("incorrect authentication data", S), ("exceeding outbound thread limit", T),
)


def _mimecast(diagnostic: str) -> Reason | None:
    low = diagnostic.lower()
    return next((reason for phrase, reason in _MIMECAST if phrase in low), None)


_AFTER_DATA_RE = re.compile(r"in reply to (end of )?data|after (end of )?data", re.IGNORECASE)


def _docomo(diagnostic: str, entry: Failure, context: str) -> Reason | None:
    if (entry.status or "") == "5.0.0" and _AFTER_DATA_RE.search(diagnostic + " " + context):
        return R
    return None


@dataclass(frozen=True)
class RemoteHost:
    name: str
    host: re.Pattern[str]  # the answering host or the recipient's domain
    reason: Callable[[str], Reason | None]


HOSTS = (
    RemoteHost("Cox", re.compile(r"(^|\.)cox\.net$"), _cox),
    RemoteHost("Spectrum", re.compile(r"(^|\.)charter\.net$"), _spectrum),
    RemoteHost("GoDaddy", re.compile(r"(^|\.)secureserver\.net$"), _godaddy),
    RemoteHost("Mimecast", re.compile(r"\.mimecast\.com$"), _mimecast),
)
_DOCOMO_HOST = re.compile(r"(^|\.)mfsmax\.docomo\.ne\.jp$")


def _hosts(entry: Failure) -> list[str]:
    remote = (entry.remote_mta or "").split(";")[-1].strip().strip("[]").lower()
    domain = entry.recipient.rsplit("@", 1)[-1]
    return [h for h in (remote, domain) if h]


def refine(verdict: Verdict, text: str = "") -> Verdict:
    """`verdict` with each failure's reason read in its receiving service's own codes, where
    one of the services above answered; unchanged otherwise."""
    if not verdict:
        return verdict
    failures = []
    for entry in verdict.failures:
        if entry.kind.failed:
            hosts = _hosts(entry)
            words = entry.diagnostic or ""
            reason = next((host.reason(words) for host in HOSTS if any(host.host.search(h) for h in hosts)), None)
            if reason is None and any(_DOCOMO_HOST.search(h) for h in hosts):
                reason = _docomo(words, entry, window(text, entry.recipient) if text else "")
            if reason is not None:
                entry = replace(entry, reason=reason)
        failures.append(entry)
    return Verdict(tuple(failures), verdict.detected_by)
