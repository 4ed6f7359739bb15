"""Bounce detection: DETECTORS in order, cheap and certain first (STYLE R6).

`detect(raw)` returns the failures a bounce reports. The VERP address (which outbox row
and recipient a bounce is about) is read by the pipeline from the envelope, before this.
"""

from __future__ import annotations

import email
from email.policy import compat32

from gateway.mail.bounces import dsn, heuristics
from gateway.mail.bounces.base import Failure, FailureKind, Verdict

DETECTORS = (dsn.detect, heuristics.detect)

__all__ = ["DETECTORS", "Failure", "FailureKind", "Verdict", "detect"]


def detect(raw: bytes) -> Verdict:
    """The first detector that finds failures wins (a DSN is read exactly; heuristics guess)."""
    message = email.message_from_bytes(raw, policy=compat32)
    for detector in DETECTORS:
        verdict = detector(message)
        if verdict:
            return verdict
    return Verdict.none()


def confirm(classification, raw: bytes):
    """(classification, verdict): run the detectors on what the gate called a bounce.

    A message let through only by its subject (the weak gate) whose body shows no failure
    is human mail after all (a customer writing "parcel returned to sender").
    """
    from gateway.mail.classify import WEAK_BOUNCE_REASON, Classification, Kind

    if classification.kind is not Kind.BOUNCE:
        return classification, Verdict.none()
    verdict = detect(raw)
    if not verdict and classification.reason == WEAK_BOUNCE_REASON:
        return Classification(Kind.HUMAN, "bounce-like subject, but no delivery failure in it"), verdict
    return classification, verdict
