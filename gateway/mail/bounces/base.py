"""What a bounce detector returns: failures per recipient, classified. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class FailureKind(str, Enum):
    HARD = "hard"  # the address does not work: stop writing to it
    SPAM = "spam"  # refused as spam or by policy (5.7.x): shown apart, still a hard failure
    SOFT = "soft"  # temporary; the sender keeps retrying
    DELAYED = "delayed"  # a warning that delivery is late (Action: delayed), not a bounce

    @property
    def permanent(self) -> bool:
        return self in (FailureKind.HARD, FailureKind.SPAM)


@dataclass(frozen=True)
class Failure:
    recipient: str  # lower case
    kind: FailureKind
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    diagnostic: str | None = None


@dataclass(frozen=True)
class Verdict:
    failures: tuple[Failure, ...]
    detected_by: str

    @classmethod
    def none(cls, detected_by: str = "none") -> "Verdict":
        return cls((), detected_by)

    def __bool__(self) -> bool:
        return bool(self.failures)


_SPAM_WORDS = re.compile(
    r"spam|blacklist|blocklist|block ?list|black ?list|reputation|policy|rejected for policy|content rejected|"
    r"dmarc|spf|dkim|spamhaus|barracuda|junk|virus|malware|not accepted|blocked|rbl|dnsbl|suspicious|abuse",
    re.IGNORECASE,
)


def classify_status(status: str | None, diagnostic: str | None, *, gave_up: bool) -> FailureKind:
    """The kind of a failure from its enhanced status code and diagnostic text.

    5.x.x is hard; 5.7.x (and 5.x.x whose diagnostic speaks of spam or policy) is a spam
    rejection; 4.x.x is soft unless the sender gave up (Action: failed), then hard.
    """
    code = (status or "").strip()
    text = diagnostic or ""
    if code.startswith("5") or (not code and re.search(r"\b5\d\d\b", text)):
        if code.startswith("5.7") or _SPAM_WORDS.search(text):
            return FailureKind.SPAM
        return FailureKind.HARD
    if code.startswith("4") or re.search(r"\b4\d\d\b", text):
        return FailureKind.HARD if gave_up else FailureKind.SOFT
    return FailureKind.HARD if gave_up else FailureKind.SOFT


def smtp_failure(recipient: str, code: int | None, text: str) -> Failure:
    """A failure from an SMTP reply at delivery time (a 5xx from the smarthost)."""
    status_match = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", text)
    status = status_match.group(1) if status_match else (f"{str(code)[0]}.0.0" if code else None)
    return Failure(recipient.lower(), classify_status(status, text, gave_up=True), status, text[:1000])
