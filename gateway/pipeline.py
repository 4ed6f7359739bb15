"""process_inbound(): the shell that runs the pure steps on one stored message, in order.

parse -> classify -> identify -> flow (apply, compose into the outbox). Everything
happens in the caller's unit of work; the caller commits, then delivers the outbox ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gateway import addresses, authentication, quarantine, store
from gateway.cases.machine import EventKind
from gateway.dispositions import Disposition
from gateway.authentication import Client, Resolver
from gateway.cases.identify import BounceMatch, CaseMatch, IntakeMatch, NoMatch, identify
from gateway.config import Settings
from gateway.casework import delivery_reports, intake, party_mail, record, schedule
from gateway.casework.work import Step
from gateway.mail import bounces as bounces_detection, trust
from gateway.mail.bounces.base import Verdict
from gateway.mail.bounces.reference import Analyser
from gateway.mail.classify import Classification, Kind, Signals, classify
from gateway.mail.parse import ParsedMessage, parse
from gateway.mail.senders import Sender
from gateway.mail.templating import Renderer
from gateway.models import Inbound, UtcDateTime
from gateway.outbox.mailer import Mailer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    outbox_ids: list[int]
    disposition: str
    case_id: int | None


@dataclass(frozen=True)
class Prepared:
    """What is read from a message before any database work: parsed, classified, and what
    a bounce reports. Pure CPU, so it runs outside the write transaction (on SQLite, the
    write lock every other writer, the SMTP ingress included, waits for)."""

    parsed: ParsedMessage
    classification: Classification
    verdict: Verdict
    sender: Sender


def prepare(raw: bytes, mail_from: str, settings: Settings, *, client: Client | None = None,
            resolver: Resolver | None = None, analyser: Analyser | None = None) -> Prepared:
    """Read a message: parse, classify, what a bounce reports (with the reference
    analyser's reading, when [bounces] analyser has one), and who wrote it (DNS lookups for
    the gateway's own authentication checks happen here, outside any transaction)."""
    limits = settings.hygiene.limits
    parsed = parse(raw, limits)
    classification = classify(parsed, Signals(mail_from=mail_from, keys=settings.gateway.secret_keys))
    classification, verdict = bounces_detection.confirm(classification, raw, limits, analyser)
    sender = sender_of(raw, parsed, mail_from, settings, client=client, resolver=resolver,
                       automatic=classification.automatic)
    return Prepared(parsed, classification, verdict, sender)


def sender_of(raw: bytes, parsed: ParsedMessage, mail_from: str, settings: Settings, *,
              client: Client | None = None, resolver: Resolver | None = None, automatic: bool = False) -> Sender:
    """Who the message says wrote it, with what authenticates that: the trusted
    Authentication-Results of the administrator's MTA, else the gateway's own checks when
    [hygiene] check_dkim / check_spf are on (not for automatic mail: nothing is acted on)."""
    hygiene = settings.hygiene
    envelope = mail_from.strip().strip("<>").lower()
    auth = trust.trusted_results(parsed.headers.get("authentication-results", ()), hygiene.authserv_id)
    if auth is None and resolver is not None and (hygiene.check_dkim or hygiene.check_spf) and not automatic:
        auth = authentication.authenticate(raw, envelope=envelope, from_domain=parsed.from_address.rpartition("@")[2],
                                           client=client or Client(None, None), resolver=resolver,
                                           check_dkim=hygiene.check_dkim, check_spf=hygiene.check_spf,
                                           trusted_relays=hygiene.trusted_relays)
    return Sender(envelope=envelope, address=parsed.from_address, name=parsed.from_name, auth=auth)


@dataclass(frozen=True)
class Attempt:
    """An attempt to process one message, begun: its bytes and envelope, or `exhausted`
    when earlier attempts used up [workers] inbound_max_attempts (it is to be quarantined)."""

    inbound_id: int
    raw: bytes
    mail_from: str
    size: int
    number: int
    exhausted: bool = False
    client: Client = Client(None, None)  # who handed it over by SMTP


_INBOUND = Inbound.__table__
_ATTEMPT_STATE = (select(_INBOUND.c.status, _INBOUND.c.attempts, _INBOUND.c.started_at, _INBOUND.c.holder,
                         _INBOUND.c.raw, _INBOUND.c.mail_from, _INBOUND.c.size, _INBOUND.c.client_address,
                         _INBOUND.c.client_helo)
                  .where(_INBOUND.c.id == bindparam("inbound_id")).with_for_update())
_SET_ATTEMPT = update(_INBOUND).where(_INBOUND.c.id == bindparam("inbound_id"))
_START_FIRST_TRY = (update(_INBOUND)
                    .where(_INBOUND.c.id == bindparam("inbound_id"), _INBOUND.c.status == "queued",
                           _INBOUND.c.started_at.is_(None), _INBOUND.c.attempts < bindparam("max_attempts"))
                    .values(attempts=_INBOUND.c.attempts + 1,
                            started_at=bindparam("attempt_at", type_=UtcDateTime()),
                            holder=bindparam("attempt_holder"),
                            lease_until=bindparam("attempt_lease_until", type_=UtcDateTime()))
                    .returning(_INBOUND.c.attempts, _INBOUND.c.raw, _INBOUND.c.mail_from, _INBOUND.c.size,
                               _INBOUND.c.client_address, _INBOUND.c.client_helo))


def begin_attempt(connection: Connection, inbound_id: int, *, settings: Settings, now: datetime,
                  holder: str | None = None, resumed: bool = False) -> Attempt | None:
    """Count one more attempt at `inbound_id` and mark it started by `holder` (committed by
    the caller before the work, so an attempt that never ends, by a time limit or a dead
    worker, still counts). None: nothing to do (processed, quarantined, gone, or an attempt
    still running). `resumed`: the caller's own last attempt was cut short by the database
    going away, which is not the message's fault: it is taken up again, not counted twice.
    Core statements on `connection` (a Database.connection()): one UPDATE ... RETURNING when
    no attempt is running and attempts remain (nearly always); else read the row locked,
    then write the attempt."""
    workers = settings.workers
    started = connection.execute(_START_FIRST_TRY, {
        "inbound_id": inbound_id, "max_attempts": workers.inbound_max_attempts, "attempt_at": now,
        "attempt_holder": holder, "attempt_lease_until": now + timedelta(seconds=workers.lease_seconds)}).first()
    if started is not None:
        return Attempt(inbound_id, started.raw, started.mail_from, started.size, started.attempts,
                       client=Client(started.client_address, started.client_helo))
    row = connection.execute(_ATTEMPT_STATE, {"inbound_id": inbound_id}).first()
    if row is None or row.status != "queued":
        return None
    attempts, started_at = row.attempts, row.started_at
    changes: dict = {}
    if started_at is not None and resumed and holder is not None and row.holder == holder:
        attempts, started_at = max(0, attempts - 1), None
    if started_at is not None:
        if started_at + timedelta(seconds=workers.processing_time_limit_seconds + 30) > now:
            return None  # another worker is on it (a duplicate queue message)
        changes["error"] = (f"attempt {attempts} did not finish: the worker stopped or it ran past "
                            f"[workers] processing_time_limit_seconds ({workers.processing_time_limit_seconds})")
        started_at = None
        log.warning("inbound %s: %s", inbound_id, changes["error"])
    if attempts >= workers.inbound_max_attempts:
        if changes or attempts != row.attempts or started_at != row.started_at:
            connection.execute(_SET_ATTEMPT.values(attempts=attempts, started_at=started_at, **changes),
                               {"inbound_id": inbound_id})
        return Attempt(inbound_id, row.raw, row.mail_from, row.size, attempts, exhausted=True)
    connection.execute(_SET_ATTEMPT.values(attempts=attempts + 1, started_at=now, holder=holder,
                                           lease_until=now + timedelta(seconds=workers.lease_seconds), **changes),
                       {"inbound_id": inbound_id})
    return Attempt(inbound_id, row.raw, row.mail_from, row.size, attempts + 1,
                   client=Client(row.client_address, row.client_helo))


def attempt_not_started(db: Session, inbound_id: int) -> None:
    """Undo `begin_attempt` for an attempt turned away before any work (no large-message slot)."""
    inbound = db.get(Inbound, inbound_id, with_for_update=True)
    if inbound is not None and inbound.status == "queued" and inbound.started_at is not None:
        inbound.attempts = max(0, inbound.attempts - 1)
        inbound.started_at = None


@dataclass(frozen=True)
class Failed:
    """What became of a failed attempt: retried after `retry_in`, or quarantined."""

    outbox_ids: list[int]
    retry_in: timedelta | None


def attempt_failed(db: Session, inbound_id: int, error: str | None, *, settings: Settings, renderer: Renderer,
                   now: datetime) -> Failed:
    """Record a failed attempt (`error`: its traceback; None: it never ran, the attempts were
    used up before): retried with backoff while attempts remain, else quarantined with its
    error and reported to staff."""
    workers = settings.workers
    inbound = db.scalar(select(Inbound).where(Inbound.id == inbound_id).with_for_update()
                        .execution_options(populate_existing=True))
    if inbound is None or inbound.status != "queued":
        return Failed([], None)
    inbound.started_at = None
    if error is not None:
        inbound.error = error[:4000]
    if inbound.attempts >= workers.inbound_max_attempts:
        why = f"processing failed {inbound.attempts} time(s)"
        log.error("inbound %s quarantined: %s: %s", inbound.id, why,
                  " ".join((inbound.error or "").strip().splitlines()[-1:]))
        return Failed(quarantine.quarantine(db, inbound, inbound.error or "", settings=settings, renderer=renderer,
                                            now=now, why=why), None)
    retry_in = timedelta(seconds=workers.inbound_retry_seconds * 2 ** max(0, inbound.attempts - 1))
    inbound.lease_until = now + retry_in + timedelta(seconds=workers.lease_seconds)
    log.warning("inbound %s: attempt %s of %s failed; tried again in %s s", inbound.id, inbound.attempts,
                workers.inbound_max_attempts, int(retry_in.total_seconds()))
    return Failed([], retry_in)


def process_inbound(db: Session, inbound_id: int, *, settings: Settings, renderer: Renderer, now: datetime,
                    prepared: Prepared | None = None) -> Result:
    """Process one queued inbound message; a no-op if it was processed already. `prepared`
    is what `prepare` read from it (done here when not given)."""
    inbound = store.claim_inbound(db, inbound_id, now=now, lease_seconds=settings.workers.lease_seconds)
    if inbound is None:
        return Result([], "already processed", None)
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    prepared = prepared or prepare(inbound.raw, inbound.mail_from, settings,
                                   client=Client(inbound.client_address, inbound.client_helo))
    parsed = prepared.parsed
    step = Step(db=db, settings=settings, mailer=mailer, now=now, inbound=inbound, parsed=parsed,
                classification=prepared.classification, verdict=prepared.verdict, sender=prepared.sender)
    match = identify(addresses.recipients_of(settings.gateway, inbound.rcpt_tos), parsed.in_reply_to + parsed.references,
                     lambda ids: store.sent_message_owner(db, ids))
    dispatch(step, match)
    if parsed.limited:
        _note_limits(step)
    if inbound.case_id is not None:
        case = store.case_by_id(db, inbound.case_id)
        schedule.reschedule(db, case, settings)
    inbound.status = "processed"
    inbound.processed_at = now
    inbound.started_at = None
    log.info("inbound %s processed: %s [%s; Message-ID %s]", inbound.id, inbound.disposition,
             prepared.classification.kind.value, parsed.message_id)
    return Result(list(mailer.outbox_ids), inbound.disposition or "", inbound.case_id)


def _note_limits(step: Step) -> None:
    """A message over the limits was processed without its excess: say what was dropped in
    the disposition, the log and the case history (the stored original keeps everything)."""
    notes = "; ".join(step.parsed.limited)
    step.inbound.disposition = f"{step.inbound.disposition or ''} (over the limits, not processed: {notes})".strip()
    log.warning("inbound %s over the limits; processed without the excess: %s", step.inbound.id, notes)
    if step.inbound.case_id is not None:
        case = store.case_by_id(step.db, step.inbound.case_id)
        record.note(step, case, EventKind.MESSAGE_LIMITED, notes=list(step.parsed.limited))


def dispatch(step: Step, match) -> None:
    """Send the message down the flow its match names."""
    if isinstance(match, BounceMatch):
        delivery_reports.handle_verp(step, match.token)
    elif step.classification.kind is Kind.BOUNCE:
        delivery_reports.handle_unaddressed(step)  # a bounce sent to the intake or a case address
    elif isinstance(match, CaseMatch):
        case = (store.case_by_reference(step.db, match.reference, lock=True) if match.reference
                else store.case_by_id(step.db, match.case_id, lock=True))
        if case is None:
            _unplaced(step, f"signed address of case {match.reference} but no such case")
        else:
            party_mail.handle(step, case, match.party)
    elif isinstance(match, IntakeMatch):
        intake.handle(step, match.local_part)
    elif isinstance(match, NoMatch):
        # Mail for no address of ours (a catch-all IMAP mailbox, a forged signature): the
        # IMAP equivalent of a 550 at RCPT. Kept and listed in `quarantine list`, but staff
        # get no mail for it, or every spam would reach them.
        step.done(Disposition.UNPLACED, f"unplaced: {match.how}")
        log.warning("inbound %s: %s", step.inbound.id, match.how)


def _unplaced(step: Step, why: str) -> None:
    """Kept and reported: staff hear of mail the gateway could not place (at once, or in
    the next digest)."""
    step.done(Disposition.UNPLACED, f"unplaced: {why}")
    quarantine.report(step.mailer, step.inbound, f"could not be placed: {why}")
