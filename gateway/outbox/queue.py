"""Queueing: one outbox row per recipient, pending from now, leased to the unit of work that
wrote it until the commit hands it to the `deliver` actor."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from gateway import addresses
from gateway.config import Settings
from gateway.models import Case, Outbox

_OUTBOX = Outbox.__table__
_INSERT_ROW = insert(_OUTBOX).returning(_OUTBOX.c.id)


def queue(db: Session, settings: Settings, *, raw: bytes, recipient: str, kind: str, party: str | None,
          case: Case | None, message_id: str, inbound_id: int | None, now: datetime) -> int:
    """Write one outbox row; its id. One Core INSERT ... RETURNING on the session's
    connection, built once: no ORM object, and no flush of the unit's other changes (the
    case and the inbound row it refers to are in the database already)."""
    return db.connection().execute(_INSERT_ROW, {
        "case_id": case.id if case else None,
        "inbound_id": inbound_id,
        "party": party,
        "kind": kind,
        "recipient": recipient,
        "verp_token": addresses.random_base32(addresses.TOKEN_CHARS),
        "message_id": message_id,
        "raw": raw,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": now + timedelta(seconds=settings.workers.lease_seconds),
        "created_at": now,
    }).scalar_one()
