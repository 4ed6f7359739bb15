"""What became of one inbound message, as a value (`inbound.outcome`); `inbound.disposition`
says it in words for people (`quarantine list`, `cases show`, the log)."""

from __future__ import annotations

from enum import Enum


class Disposition(str, Enum):
    CASE = "case"  # acted on, or recorded on, a case
    INTAKE = "intake"  # answered at the intake address: no case (yet)
    REPORT = "report"  # a delivery report (or an auto-reply to a bounce address), applied to what we sent
    UNPLACED = "unplaced"  # for no case, transaction or message of ours: kept, listed in `quarantine list`
    TOO_LARGE = "too_large"  # over [ingress.imap] max_message_bytes: left in its mailbox, listed
    QUARANTINED = "quarantined"  # processing failed: kept with its error, listed


# Kept for staff: listed by `quarantine list` (with the quarantined ones) and can be processed again.
UNPLACED = frozenset({Disposition.UNPLACED, Disposition.TOO_LARGE})
