"""Bounce detection: DETECTORS in order, cheap and certain first (STYLE R6).

`detect(raw)` returns the failures a bounce reports. The VERP address (which outbox row
and recipient a bounce is about) is read by the pipeline from the envelope, before this.
"""

from __future__ import annotations

import email
from email.policy import compat32

from gateway.mail.bounces import dsn, heuristics
from gateway.mail.bounces.base import Failure, FailureKind, Verdict
from gateway.mail.limits import Limits, bound

DETECTORS = (dsn.detect, heuristics.detect)

__all__ = ["DETECTORS", "Failure", "FailureKind", "Verdict", "detect"]


HEURISTIC_BYTES = 256 * 1024  # what the guessing detectors read: a report says what failed at its start


def detect(raw: bytes, limits: Limits = Limits()) -> Verdict:
    """The first detector that finds failures wins (a DSN is read exactly; heuristics guess).

    The guessing detectors (flufl.bounce's regular expressions) read only the first
    HEURISTIC_BYTES: on megabytes of text they take seconds, and what a bounce reports is
    at its start."""
    bounded = bound(raw, limits).raw
    message = email.message_from_bytes(bounded, policy=compat32)
    for detector in DETECTORS:
        if detector is heuristics.detect and len(bounded) > HEURISTIC_BYTES:
            message = email.message_from_bytes(bounded[:HEURISTIC_BYTES], policy=compat32)
        verdict = detector(message)
        if verdict:
            return verdict
    return Verdict.none()


def confirm(classification, raw: bytes, limits: Limits = Limits()):
    """(classification, verdict): run the detectors on what the gate called a bounce.

    A message let through only by its subject (the weak gate) whose body shows no failure
    is human mail after all (a customer writing "parcel returned to sender").
    """
    from gateway.mail.classify import WEAK_BOUNCE_REASON, Classification, Kind

    if classification.kind is not Kind.BOUNCE:
        return classification, Verdict.none()
    verdict = detect(raw, limits)
    if not verdict and classification.reason == WEAK_BOUNCE_REASON:
        return Classification(Kind.HUMAN, "bounce-like subject, but no delivery failure in it"), verdict
    return classification, verdict
