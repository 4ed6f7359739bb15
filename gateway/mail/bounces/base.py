"""What a delivery-report detector returns: one verdict, a reason per recipient. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.mail.bounces.reasons import FailureKind, Reason, kind_of, permanent_of, reason_of

__all__ = ["Failure", "FailureKind", "Reason", "Verdict", "failure", "smtp_failure"]


@dataclass(frozen=True)
class Failure:
    """What a report says about one recipient (a failure, a warning, or a success)."""

    recipient: str  # lower case; '' when the report names nobody (a complaint, an auto-reply)
    reason: Reason
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    diagnostic: str | None = None  # the remote server's words
    permanent: bool = False  # final for the address (5xx), not only for the message
    remote_mta: str | None = None
    # the mailbox the receiving side delivered to, when it is not the address as we sent it
    # (an alias it rewrote: a DSN's Final-Recipient beside its Original-Recipient); lower case
    final_recipient: str | None = None

    @property
    def kind(self) -> FailureKind:
        return kind_of(self.reason, permanent=self.permanent)


def failure(recipient: str, status: str | None, diagnostic: str | None, *, gave_up: bool = True,
            remote_mta: str | None = None, context: str = "") -> Failure:
    """A failure read from a status code and the remote server's words (`context`: the
    report's text about this recipient, for when the diagnostic says little)."""
    status = status or None
    return Failure(recipient.lower(), reason_of(status, diagnostic, gave_up=gave_up, context=context), status,
                   (diagnostic or None) and diagnostic[:2000], permanent_of(status, diagnostic or context, gave_up=gave_up),
                   remote_mta)


@dataclass(frozen=True)
class Verdict:
    failures: tuple[Failure, ...]  # one per recipient reported on, failed or not
    detected_by: str

    @classmethod
    def none(cls, detected_by: str = "none") -> "Verdict":
        return cls((), detected_by)

    @classmethod
    def report(cls, reason: Reason, detected_by: str, *, recipient: str = "", diagnostic: str | None = None) -> "Verdict":
        """A report that is not about a failed recipient (a complaint, a challenge)."""
        return cls((Failure(recipient.lower(), reason, None, diagnostic),), detected_by)

    def __bool__(self) -> bool:
        return bool(self.failures)

    @property
    def failed(self) -> tuple[Failure, ...]:
        """The recipients whose delivery failed (not warnings, not successes)."""
        return tuple(f for f in self.failures if f.kind.failed)

    @property
    def reason(self) -> Reason | None:
        """The verdict's main reason: the first failure's, else the first report's."""
        first = (self.failed or self.failures or (None,))[0]
        return first.reason if first is not None else None


_STATUS_IN_TEXT = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def smtp_failure(recipient: str, code: int | None, text: str) -> Failure:
    """A refusal in an SMTP reply at send time (the smarthost's 5xx, or a 4xx that lasted),
    read the same way as a report: 554 5.7.1 for a virus is the message, not the address."""
    status_match = _STATUS_IN_TEXT.search(text)
    status = status_match.group(1) if status_match else (f"{str(code)[0]}.0.0" if code else None)
    words = text if code is None or str(code) in text else f"{code} {text}"
    return failure(recipient, status, words)
