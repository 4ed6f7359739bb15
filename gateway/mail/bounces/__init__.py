"""Delivery reports: every report read into one verdict with a reason per recipient.

DETECTORS run in order, cheap and certain first (STYLE R6): an abuse feedback report
(ARF), an Amazon SES notification (JSON), a DSN, DSN fields in a report with a broken MIME structure, a challenge-response
request, GNU Mailman's flufl.bounce detectors, then our own reader of reports written for
people. The first that recognises the report wins; a known appliance's own words
(vendors.py), then a known receiving service's own codes (remote_hosts.py), refine its
reasons. The VERP address (which outbox row and
recipient a report is about) is read by the pipeline from the envelope, before this.
"""

from __future__ import annotations

import email
from email.message import Message
from email.policy import compat32
from typing import Callable

from gateway.mail.bounces import arf, challenge, dsn, heuristics, reference, remote_hosts, ses, textual, vendors
from gateway.mail.bounces.base import Failure, FailureKind, Reason, Verdict, failure
from gateway.mail.limits import Limits, bound

__all__ = ["DETECTORS", "Failure", "FailureKind", "Reason", "Verdict", "confirm", "detect", "for_recipient",
           "read_report"]


def _arf(message: Message, text: str) -> Verdict:
    return arf.detect(message)


def _ses(message: Message, text: str) -> Verdict:
    return ses.detect(message)


def _dsn(message: Message, text: str) -> Verdict:
    return dsn.detect(message, text)


def _dsn_in_text(message: Message, text: str) -> Verdict:
    return dsn.detect_in_text(text)


def _text(message: Message, text: str) -> Verdict:
    return textual.detect(message)


DETECTORS: tuple[Callable[[Message, str], Verdict], ...] = (
    _arf, _ses, _dsn, _dsn_in_text, challenge.detect, heuristics.detect, _text)


def normalised(raw: bytes) -> bytes:
    """Line ends as LF: reports with CR-only (old Mac) or mixed line ends parse like others."""
    if b"\r" not in raw:
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def read(raw: bytes) -> tuple[Message, str]:
    """The report parsed (compat32) and its human-readable text."""
    message = email.message_from_bytes(normalised(raw), policy=compat32)
    return message, textual.report_text(message)


HEURISTIC_BYTES = 256 * 1024  # what the guessing detectors read: a report says what failed at its start


def detect(raw: bytes, limits: Limits = Limits()) -> Verdict:
    """The first detector that recognises the report wins.

    The guessing detectors (flufl.bounce's regular expressions, our reader of reports
    written for people) read only the first HEURISTIC_BYTES: on megabytes of text they
    take seconds, and what a bounce reports is at its start."""
    return _detected(bound(raw, limits).raw)


def _detected(bounded: bytes) -> Verdict:
    message, text = read(bounded)
    for detector in DETECTORS:
        if detector in (heuristics.detect, _text) and len(bounded) > HEURISTIC_BYTES:
            message, text = read(bounded[:HEURISTIC_BYTES])
        verdict = detector(message, text)
        if verdict:
            return remote_hosts.refine(vendors.refine(message, verdict, text), text)
    return Verdict.none()


def for_recipient(raw: bytes, verdict: Verdict, recipient: str) -> Failure:
    """What a report says about `recipient`, when the envelope (VERP) already names it: the
    report's entry for that address (or for the mailbox it was rewritten to), else its only
    entry, else its words (a report may name an internal alias, or nothing readable)."""
    recipient = recipient.lower()
    entries = verdict.failures
    for entry in entries:
        if entry.recipient == recipient or entry.final_recipient == recipient:
            return entry
    if entries and (len(entries) == 1 or len({(e.reason, e.permanent) for e in entries}) == 1):
        first = entries[0]
        return Failure(recipient, first.reason, first.status, first.diagnostic, first.permanent, first.remote_mta)
    _, text = read(raw)
    return failure(recipient, None, textual.window(text, recipient)[:1000] or "a report without a readable reason",
                   gave_up=not textual.is_warning(text))


def read_report(raw: bytes, limits: Limits = Limits(), analyser: reference.Analyser | None = None) -> Verdict:
    """Our detectors' verdict, joined with the reference analyser's reading where one is
    configured and answers ([bounces] analyser; reference.py says whose reading wins)."""
    bounded = bound(raw, limits).raw
    verdict = _detected(bounded)
    if analyser is None:
        return verdict
    theirs = analyser.read(bounded)
    return verdict if theirs is None else reference.merged(verdict, theirs)


def confirm(classification, raw: bytes, limits: Limits = Limits(), analyser: reference.Analyser | None = None):
    """(classification, verdict): read what the gate called a bounce (`read_report`).

    A message let through only by its subject (the weak gate) whose body shows no failure
    is human mail after all (a customer writing "parcel returned to sender").
    """
    from gateway.mail.classify import WEAK_BOUNCE_REASON, Classification, Kind

    if classification.kind is not Kind.BOUNCE:
        return classification, Verdict.none()
    verdict = read_report(raw, limits, analyser)
    weak = classification.reason == WEAK_BOUNCE_REASON
    if weak and not any(f.kind.failed or f.kind is FailureKind.DELAYED for f in verdict.failures):
        return Classification(Kind.HUMAN, "bounce-like subject, but no delivery failure in it"), Verdict.none()
    return classification, verdict
