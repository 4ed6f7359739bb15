"""Quarantine and what staff hear of it: a message that could not be processed is kept with
its error and never retried for ever; staff are told of each quarantined or unplaced
message once, at once when nothing was reported within [workers]
quarantine_digest_minutes, otherwise in the next digest (one mail for all the others), so
a flood of broken mail costs staff one mail an hour, not one mail each."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.dispositions import Disposition
from gateway.mail.templating import Renderer
from gateway.models import Inbound, StaffReport
from gateway.notices import Notice
from gateway.outbox.mailer import Mailer

log = logging.getLogger(__name__)
DIGEST_LISTED = 50  # messages named one by one in a digest; the rest are counted


def quarantine(db: Session, inbound: Inbound, error: str, *, settings: Settings, renderer: Renderer,
               now: datetime, why: str = "processing failed") -> list[int]:
    """Keep `inbound` out of processing with its error; report it to staff (at once or in
    the next digest). Returns the outbox ids to deliver."""
    inbound.status = "quarantined"
    inbound.error = error[:4000]
    inbound.outcome = Disposition.QUARANTINED.value
    inbound.disposition = f"quarantined: {why}"
    inbound.started_at = None
    inbound.processed_at = now
    first_line = error.strip().splitlines()[-1][:300] if error.strip() else ""
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    report(mailer, inbound, f"{why}: {first_line}" if first_line else why)
    return list(mailer.outbox_ids)


def report(mailer: Mailer, inbound: Inbound, problem: str) -> None:
    """Tell staff of `inbound` now, unless a report went out within the digest window: then
    it waits for the next digest (`send_digest`, run by the scheduler)."""
    db, now = mailer.db, mailer.now
    row = StaffReport(inbound_id=inbound.id, problem=problem[:1000], created_at=now, told_at=None)
    db.add(row)
    db.flush()
    if _reported_since(db, now - _window(mailer.settings)):
        log.info("inbound %s: %s; staff will hear of it in the next digest", inbound.id, problem)
        return
    mailer.staff_notice_outside_case(
        Notice.STAFF_QUARANTINE,
        {"inbound_id": inbound.id, "problem": problem, "mail_from": inbound.mail_from,
         "received_at": inbound.received_at},
        inbound_id=inbound.id)
    row.told_at = now


def too_large(db: Session, inbound_id: int, *, settings: Settings, renderer: Renderer, now: datetime, size: int,
              where: str, tell_staff: bool) -> list[int]:
    """Quarantine the stored headers of a message too large to read (it stays in `where`);
    with `tell_staff`, report it (now, or in the next digest). Returns the outbox ids to deliver."""
    limit = settings.smtp_ingress.max_message_bytes
    row = db.get(Inbound, inbound_id)
    row.status = "quarantined"
    row.outcome = Disposition.TOO_LARGE.value
    row.disposition = "unplaced: too large for max_message_bytes; left in its mailbox"
    row.error = (f"{size} bytes, over max_message_bytes ({limit}); "
                 f"only the headers are kept here; the message is still in {where}")
    if not tell_staff:
        return []
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    report(mailer, row, f"is too large ({size} bytes, over max_message_bytes = {limit}) and was not read; it is "
                        f"still in {where}. Raise the limit or ask the sender for smaller attachments")
    return list(mailer.outbox_ids)


def send_digest(db: Session, *, settings: Settings, renderer: Renderer, now: datetime) -> list[int]:
    """One mail to staff listing every report still untold, once the window since the last
    report has passed. Returns the outbox ids to deliver (none when there is nothing to say)."""
    if _reported_since(db, now - _window(settings)):
        return []
    pending = db.scalar(select(func.count()).select_from(StaffReport).where(StaffReport.told_at.is_(None))) or 0
    if not pending:
        return []
    rows = db.execute(select(StaffReport.id, StaffReport.inbound_id, StaffReport.problem, Inbound.mail_from,
                             Inbound.received_at)
                      .join(Inbound, Inbound.id == StaffReport.inbound_id)
                      .where(StaffReport.told_at.is_(None)).order_by(StaffReport.id).limit(DIGEST_LISTED)).all()
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    mailer.staff_notice_outside_case(
        Notice.STAFF_QUARANTINE_DIGEST,
        {"count": pending, "listed": [{"inbound_id": r.inbound_id, "problem": r.problem, "mail_from": r.mail_from,
                                       "received_at": r.received_at} for r in rows],
         "window_minutes": settings.workers.quarantine_digest_minutes},
        inbound_id=None)
    db.execute(update(StaffReport).where(StaffReport.told_at.is_(None)).values(told_at=now))
    log.info("quarantine digest: staff told of %s message(s)", pending)
    return list(mailer.outbox_ids)


def _window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.workers.quarantine_digest_minutes)


def _reported_since(db: Session, since: datetime) -> bool:
    return db.scalar(select(StaffReport.id).where(StaffReport.told_at > since).limit(1)) is not None
