"""Holding a message that is not the party's: kept on the case, relayed to nobody, obeyed in
nothing, until staff release it (or the customer confirms it was hers: `release`). Staff see who it says it is from (envelope sender, From
with its display name, the authentication results) and why it was held: at once for the
first, then in one digest per case per hour, so a stranger's flood costs staff one mail
an hour, not one mail each."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from gateway import store
from gateway.dispositions import Disposition
from gateway.addresses import PARTY_NAMES
from gateway.cases.machine import EventKind
from gateway.casework import readers, record
from gateway.casework.record import move, record_inbound
from gateway.casework.work import Step, Work
from gateway.models import Case, Inbound, Message, Outbox
from gateway.notices import Notice
from gateway.outbox.mailer import Mailer

log = logging.getLogger(__name__)
DIGEST_MINUTES = 60
MAX_LISTED = 30


def hold(step: Step, case: Case, party: str, reason: str, *, tell_staff: bool = True) -> Message:
    """Keep the message on `case`, held for staff; staff hear of it at once unless a held
    message of this case was reported within the hour (then in the next digest)."""
    message = record_inbound(step, case, party, held_reason=reason)
    record.note(step, case, EventKind.MESSAGE_HELD, party=party, message=message, reason=reason,
                sender={k: v for k, v in (message.sender or {}).items() if k != "reason"})
    if tell_staff and not _reported_since(step.db, case, step.now - timedelta(minutes=DIGEST_MINUTES)):
        _report(step.mailer, case, [message], digest=False)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: held for staff: {reason}", case_id=case.id)
    log.info("inbound %s held on case %s: %s (envelope <%s>, From <%s>)", step.inbound.id, case.reference.upper(),
             reason, step.sender.envelope if step.sender else "", step.parsed.from_address)
    return message


def describe(message: Message) -> dict:
    """A held message as staff are shown it (notice, `cases show`, its JSON)."""
    sender = message.sender or {}
    auth = sender.get("authentication")
    if auth:
        shown = ", ".join(f"{k}={v}" for k, v in auth.items() if k in ("dmarc", "spf", "dkim") and v) or "none"
        shown += f" (by {auth.get('by')})" if auth.get("by") else ""
    else:
        shown = "none reported (no trusted Authentication-Results)"
    return {"id": message.id, "party": PARTY_NAMES.get(message.party, message.party), "subject": message.subject[:200],
            "reason": message.held_reason or "", "from": sender.get("from", ""), "from_name": sender.get("from_name", ""),
            "envelope_sender": sender.get("envelope_sender", ""), "authentication": shown}


def send_digests(work: Work) -> list[int]:
    """One digest per case of the held messages staff have not heard of, once an hour has
    passed since that case's last report (run by the scheduler)."""
    since = work.now - timedelta(minutes=DIGEST_MINUTES)
    case_ids = list(work.db.scalars(select(Message.case_id).where(
        Message.held.is_(True), Message.released_at.is_(None), Message.staff_told_at.is_(None),
        Message.direction == "in").distinct().limit(500)))
    for case_id in case_ids:
        case = store.case_by_id(work.db, case_id)
        if case is None or _reported_since(work.db, case, since):
            continue
        pending = list(work.db.scalars(select(Message).where(
            Message.case_id == case_id, Message.held.is_(True), Message.released_at.is_(None),
            Message.staff_told_at.is_(None), Message.direction == "in").order_by(Message.id)))
        if pending:
            _report(work.mailer, case, pending, digest=True)
    return list(work.mailer.outbox_ids)


def _report(mailer: Mailer, case: Case, messages: list[Message], *, digest: bool) -> None:
    mailer.notice(Notice.STAFF_HELD_MESSAGE, case, "s",
                  {"held": {"digest": digest, "count": len(messages),
                            "messages": [describe(m) for m in messages[:MAX_LISTED]]}})
    for message in messages:
        message.staff_told_at = mailer.now


def _reported_since(db, case: Case, since: datetime) -> bool:
    return db.scalar(select(Outbox.id).where(Outbox.case_id == case.id, Outbox.kind == Notice.STAFF_HELD_MESSAGE.value,
                                             Outbox.created_at > since).limit(1)) is not None


def release(step: Step, case: Case, message_id: int, *, by: str = "s") -> bool:
    """Relay a held message as its author's, and record who released it (staff with
    #release, or the customer confirming it was hers)."""
    held = step.db.get(Message, message_id)
    if held is None or held.case_id != case.id or not held.held or held.released_at is not None:
        record.note(step, case, EventKind.RELEASE_REFUSED, party=by, held_id=message_id)
        return False
    inbound = step.db.get(Inbound, held.inbound_id)
    author = held.party
    targets = readers.readers_of(step, case, author)  # where it would have gone had it not been held
    for target in targets:
        step.mailer.relay(case, inbound.raw, author=author, to_party=target, inbound_id=inbound.id)
    held.released_at = step.now
    store.remember_in_thread(store.party(step.db, case, author), held.message_id)  # released: now part of the thread
    record.note(step, case, EventKind.MESSAGE_RELEASED, party=by, held_id=message_id, to=",".join(targets))
    # A released reply is the party's answer, as if it had come through at once.
    if author == "m":
        record.wrote(case, "m", step.now)
        move(step, case, EventKind.MERCHANT_REPLIED, party="m", message=held, released=True)
    elif author == "c":
        record.wrote(case, "c", step.now)
        move(step, case, EventKind.CUSTOMER_REPLIED, party="c", message=held, released=True)
    return True
