"""Putting failed work back in line: quarantined messages and failed deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.dispositions import UNPLACED, Disposition
from gateway.models import Inbound, Outbox


def requeue_inbound(db: Session, inbound_id: int, *, now: datetime, lease_seconds: int) -> bool:
    """Process a quarantined (or unplaced) message again from its raw bytes. A message that
    was processed normally is never re-run (that would send its relays a second time)."""
    row = db.get(Inbound, inbound_id, with_for_update=True)
    if row is None or not (row.status == "quarantined" or row.outcome in UNPLACED):
        return False
    if row.outcome == Disposition.TOO_LARGE:
        return False  # only its headers are kept: the message itself is still in its mailbox
    row.status = "queued"
    row.error = None
    row.lease_until = now + timedelta(seconds=lease_seconds)
    return True


def requeue_outbox(db: Session, outbox_id: int, *, now: datetime, lease_seconds: int) -> bool:
    """Try a failed delivery again (same bytes, same Message-ID)."""
    row = db.get(Outbox, outbox_id, with_for_update=True)
    if row is None or row.status not in ("failed",):
        return False
    row.status = "pending"
    row.attempts = 0
    row.first_failure_at = None
    row.next_attempt_at = now
    row.lease_until = now + timedelta(seconds=lease_seconds)
    return True
