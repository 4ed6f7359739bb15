"""process_inbound(): the shell that runs the pure steps on one stored message, in order.

parse -> classify -> identify -> flow (apply, compose into the outbox). Everything
happens in the caller's unit of work; the caller commits, then delivers the outbox ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gateway import addresses, store, timer_jobs
from gateway.cases.identify import BounceMatch, CaseMatch, IntakeMatch, NoMatch, identify
from gateway.config import Settings
from gateway.flows import bounces, casemail, intake
from gateway.flows.step import Step
from gateway.mail import bounces as bounces_detection
from gateway.mail.classify import Kind, Signals, classify
from gateway.mail.parse import parse
from gateway.mail.templating import Renderer
from gateway.models import Inbound
from gateway.notices import Notice
from gateway.outgoing import Mailer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    outbox_ids: list[int]
    disposition: str
    case_id: int | None


def recipients_of(settings: Settings, rcpt_tos: list[str]) -> list[addresses.Recipient]:
    gateway = settings.gateway
    return [addresses.parse(r, domain=gateway.domain, keys=gateway.secret_keys, intake=tuple(gateway.intake_local_parts))
            for r in rcpt_tos]


def process_inbound(db: Session, inbound_id: int, *, settings: Settings, renderer: Renderer, now: datetime) -> Result:
    """Process one queued inbound message; a no-op if it was processed already."""
    inbound = store.claim_inbound(db, inbound_id, now=now, lease_seconds=settings.workers.lease_seconds)
    if inbound is None:
        return Result([], "already processed", None)
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    limits = settings.hygiene.limits
    parsed = parse(inbound.raw, limits)
    classification = classify(parsed, Signals(mail_from=inbound.mail_from, keys=settings.gateway.secret_keys))
    classification, verdict = bounces_detection.confirm(classification, inbound.raw, limits)
    step = Step(db=db, settings=settings, mailer=mailer, now=now, inbound=inbound, parsed=parsed,
                classification=classification, verdict=verdict)
    match = identify(recipients_of(settings, inbound.rcpt_tos), parsed.in_reply_to + parsed.references,
                     lambda ids: store.sent_message_owner(db, ids))
    dispatch(step, match)
    if parsed.limited:
        _note_limits(step)
    if inbound.case_id is not None:
        case = store.case_by_id(db, inbound.case_id)
        timer_jobs.reschedule(db, case, settings)
    inbound.status = "processed"
    inbound.processed_at = now
    log.info("inbound %s processed: %s [%s; Message-ID %s]", inbound.id, inbound.disposition,
             classification.kind.value, parsed.message_id)
    return Result(list(mailer.outbox_ids), inbound.disposition or "", inbound.case_id)


def _note_limits(step: Step) -> None:
    """A message over the limits was processed without its excess: say what was dropped in
    the disposition, the log and the case history (the stored original keeps everything)."""
    notes = "; ".join(step.parsed.limited)
    step.inbound.disposition = f"{step.inbound.disposition or ''} (over the limits, not processed: {notes})".strip()
    log.warning("inbound %s over the limits; processed without the excess: %s", step.inbound.id, notes)
    if step.inbound.case_id is not None:
        case = store.case_by_id(step.db, step.inbound.case_id)
        store.add_event(step.db, case, "message_limited", at=step.now, notes=list(step.parsed.limited))


def dispatch(step: Step, match) -> None:
    """Send the message down the flow its match names."""
    if isinstance(match, BounceMatch):
        bounces.handle_verp(step, match.token)
    elif step.classification.kind is Kind.BOUNCE:
        bounces.handle_unaddressed(step)  # a bounce sent to the intake or a case address
    elif isinstance(match, CaseMatch):
        case = (store.case_by_reference(step.db, match.reference, lock=True) if match.reference
                else store.case_by_id(step.db, match.case_id, lock=True))
        if case is None:
            _unplaced(step, f"signed address of case {match.reference} but no such case")
        else:
            casemail.handle(step, case, match.party)
    elif isinstance(match, IntakeMatch):
        intake.handle(step, match.local_part)
    elif isinstance(match, NoMatch):
        # Mail for no address of ours (a catch-all IMAP mailbox, a forged signature): the
        # IMAP equivalent of a 550 at RCPT. Kept and listed in `quarantine list`, but staff
        # get no mail for it, or every spam would reach them.
        step.done(f"unplaced: {match.how}")
        log.warning("inbound %s: %s", step.inbound.id, match.how)


def _unplaced(step: Step, why: str) -> None:
    """Kept and reported: staff hear of mail the gateway could not place."""
    step.done(f"unplaced: {why}")
    step.mailer.staff_notice_outside_case(
        Notice.STAFF_QUARANTINE,
        {"inbound_id": step.inbound.id, "problem": f"could not be placed: {why}",
         "mail_from": step.inbound.mail_from, "received_at": step.inbound.received_at},
        inbound_id=step.inbound.id,
    )


def quarantine(db: Session, inbound_id: int, error: str, *, settings: Settings, renderer: Renderer,
               now: datetime) -> list[int]:
    """Mark a message that failed processing; its raw bytes stay, staff are told once."""
    inbound = db.get(Inbound, inbound_id)
    if inbound is None or inbound.status != "queued":
        return []
    inbound.status = "quarantined"
    inbound.error = error[:4000]
    inbound.disposition = "quarantined: processing failed"
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    mailer.staff_notice_outside_case(
        Notice.STAFF_QUARANTINE,
        {"inbound_id": inbound.id, "problem": f"processing failed: {error.splitlines()[0][:300] if error else ''}",
         "mail_from": inbound.mail_from, "received_at": inbound.received_at},
        inbound_id=inbound.id,
    )
    return list(mailer.outbox_ids)
