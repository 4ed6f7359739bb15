"""Delivery reports: a DSN at a VERP address, a report in another format, or the
smarthost's refusal at send time, tied to the outbox row (and so the case and party) it
is about, and acted on by its reason (README "Delivery reports"):

- the address does not exist (user unknown, no such domain, account closed): the
  merchant's address is flagged invalid for all its cases and its open cases escalate
  at once (a customer's: staff are told);
- trouble with an address that exists, or a refused message: casework.delivery_trouble;
- a delay warning: recorded;
- a success DSN: delivery evidence on the outbox row; a feedback report: a complaint
  recorded on the case, staff told; an auto-reply or challenge: recorded. Never bounces.
"""

from __future__ import annotations

import email
import re
from email.policy import compat32
from email.utils import formataddr, parseaddr

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from gateway import addresses, store
from gateway.dispositions import Disposition
from gateway.cases.machine import EventKind
from gateway.casework import delivery_trouble, lifecycle, record, schedule
from gateway.casework.work import Moment, Step, Work
from gateway.mail import bounces as reports
from gateway.mail.bounces import Failure, FailureKind, Reason
from gateway.mail.bounces.base import smtp_failure
from gateway.mail.classify import Kind
from gateway.models import Bounce, Case, Outbox
from gateway.notices import Notice
from gateway.outbox.mailer import Mailer

log = logging.getLogger(__name__)
UNADDRESSED_LOOKBACK_DAYS = 30
_MESSAGE_ID_RE = re.compile(rb"<([^<>\s]{3,250})>")


def handle_verp(step: Step, token: str) -> None:
    """A message to bounce+<token>@: it reports on exactly one outbox row and recipient."""
    row = step.db.scalar(select(Outbox).where(Outbox.verp_token == token))
    if row is None:
        step.done(Disposition.UNPLACED, f"unplaced: message to the VERP address of an outbox row that no longer exists ({token})")
        return
    case = store.case_by_id(step.db, row.case_id) if row.case_id else None  # apply_report locks
    kind = step.classification.kind
    if kind is not Kind.BOUNCE:
        # Vacation responders answer the envelope sender, which is our VERP address.
        if case is not None:
            record.note(step, case, EventKind.recorded(kind.value), party=row.party,
                        reason=f"{step.classification.reason} (sent to the bounce address)")
        step.done(Disposition.REPORT, f"{kind.value} to the bounce address of outbox {row.id}: recorded, not relayed",
                  case_id=row.case_id)
        return
    entry = reports.for_recipient(step.inbound.raw, step.verdict, row.recipient)
    apply_report(step, row, entry, detected_by=f"verp/{step.verdict.detected_by}", inbound_id=step.inbound.id)
    step.done(Disposition.REPORT, f"delivery report ({entry.reason.value}: {entry.kind.value} {entry.status or ''}) for outbox {row.id} "
              f"to the {_role(row.party)}".replace("  ", " "), case_id=row.case_id)


def handle_unaddressed(step: Step) -> None:
    """A report that did not come back to a VERP address: act only when it quotes the
    Message-ID of what we sent (anyone can write a fake report naming a merchant's
    address; only a real report carries our message back)."""
    since = step.now - timedelta(days=UNADDRESSED_LOOKBACK_DAYS)
    raw = step.inbound.raw
    quoted = {m.decode("latin-1") for m in _MESSAGE_ID_RE.findall(raw)}
    matched, unproven = 0, []
    for entry in step.verdict.failures:
        query = select(Outbox).where(Outbox.created_at >= since, Outbox.status.in_(("sent", "failed", "pending")))
        if entry.recipient:  # the address as we sent it, or the mailbox the report says it became
            query = query.where(Outbox.recipient.in_({entry.recipient, entry.final_recipient or entry.recipient}))
        else:  # a complaint or challenge naming nobody: the message it quotes says who
            query = query.where(Outbox.message_id.in_([f"<{q}>" for q in quoted] + list(quoted)))
        rows = step.db.scalars(query.order_by(Outbox.id.desc()).limit(50)).all()
        row = next((r for r in rows if r.message_id.encode() in raw), None)
        if row is None:
            if rows:
                unproven.append(entry.recipient or entry.reason.value)
            continue
        matched += 1
        apply_report(step, row, entry, detected_by=step.verdict.detected_by, inbound_id=step.inbound.id)
        if row.case_id is not None:
            step.inbound.case_id = row.case_id
    reason = step.verdict.reason.value if step.verdict.reason else "no reason"
    if matched:
        step.done(Disposition.REPORT, f"delivery report ({reason}) for {matched} address(es) we wrote to, read by "
                  f"{step.verdict.detected_by}", case_id=step.inbound.case_id)
    elif unproven:
        step.done(Disposition.UNPLACED, f"unplaced: report naming {', '.join(unproven)} without any Message-ID we sent: "
                  "not trusted, nothing changed")
    else:
        found = ", ".join(f.recipient for f in step.verdict.failures if f.recipient) or "no address found"
        step.done(Disposition.UNPLACED, f"unplaced: report ({reason}) for addresses we did not write to recently ({found})")


def apply_report(work: Work, row: Outbox, entry: Failure, *, detected_by: str, inbound_id: int | None) -> None:
    """Record what a report says about `row` and act on its reason."""
    entry = _lasting_delay(work, row, entry)
    kind = entry.kind
    # Locks in one order everywhere: the merchant (a merchant failure touches all its cases),
    # then the case, and both before inserting anything that references them (two failures
    # recorded at once would otherwise both hold key-share locks and deadlock on FOR UPDATE).
    merchant = None
    if row.party == "m" and row.case_id is not None:
        merchant_id = work.db.scalar(select(Case.merchant_id).where(Case.id == row.case_id))
        if merchant_id is not None:
            merchant = store.merchant(work.db, merchant_id, lock=True)
    case = store.case_by_id(work.db, row.case_id, lock=True) if row.case_id else None
    detail = {"recipient_party": row.party, "status": entry.status, "failure": kind.value, "reason": entry.reason.value}
    if kind is FailureKind.REPORT:
        _not_a_failure(work, row, case, merchant, entry, detected_by=detected_by, inbound_id=inbound_id)
        return
    work.db.add(Bounce(outbox_id=row.id, inbound_id=inbound_id, case_id=row.case_id, recipient=row.recipient,
                       kind=kind.value, reason=entry.reason.value, status=entry.status,
                       diagnostic=(entry.diagnostic or "")[:2000], detected_by=detected_by, created_at=work.now))
    if kind is FailureKind.DELAYED:
        if case is not None:
            record.note(work, case, EventKind.DELIVERY_DELAYED, party=row.party, **detail)
        return
    if kind is not FailureKind.DEAD:
        delivery_trouble.record_trouble(work, row, case, entry, inbound_id=inbound_id)
        return
    row.status = "failed" if row.status != "superseded" else row.status
    row.delivery_problem = entry.reason.value
    row.delivery_problem_at = work.now
    if case is not None:
        record.note(work, case, EventKind.DELIVERY_FAILED, party=row.party, **detail)
    if row.party == "m" and case is not None:
        merchant_failed(work, case, row, entry, inbound_id=inbound_id)
    elif row.party == "c" and case is not None:
        work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, case, "s",
                           {"problem": delivery_trouble.problem(row, entry)}, inbound_id=inbound_id)
    elif row.party == "s":
        log.warning("a staff address failed: %s (%s %s)", row.recipient, entry.status, entry.diagnostic)


def _lasting_delay(work: Work, row: Outbox, entry: Failure) -> Failure:
    """A delay warning for a message handed over `unreachable_after_hours` ago is trouble
    that has lasted: it counts like an expiry (the MTA may go on trying for days)."""
    hours = work.settings.bounces.unreachable_after_hours
    start = row.first_failure_at or row.sent_at
    if entry.kind is not FailureKind.DELAYED or start is None or start > work.now - timedelta(hours=hours):
        return entry
    return Failure(entry.recipient, Reason.EXPIRED, entry.status,
                   f"still not delivered after {hours} hours: {entry.diagnostic or ''}".strip(), False, entry.remote_mta)


def _not_a_failure(work: Work, row: Outbox, case: Case | None, merchant, entry: Failure, *, detected_by: str,
                   inbound_id: int | None) -> None:
    """Success DSNs, complaints, auto-replies and challenges: evidence, never bounces."""
    report = {"reason": entry.reason.value, "status": entry.status, "remote_mta": entry.remote_mta,
              "diagnostic": (entry.diagnostic or "")[:500], "detected_by": detected_by, "inbound_id": inbound_id,
              "reported_at": work.now.isoformat()}
    if entry.reason in (Reason.DELIVERED, Reason.EXPANDED):
        row.delivered_at = work.now
        row.delivery_report = report
        if merchant is not None and merchant.support_email == row.recipient.lower() and merchant.trouble_since:
            delivery_trouble.clear(merchant)  # mail gets through again
        if case is not None:
            record.note(work, case, EventKind.DELIVERY_CONFIRMED, party=row.party, **report)
        return
    if case is None:
        return
    if entry.reason is Reason.FEEDBACK:
        record.note(work, case, EventKind.COMPLAINT_RECEIVED, party=row.party, **report)
        work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, case, "s",
                           {"problem": delivery_trouble.problem(row, entry, kind="feedback")}, inbound_id=inbound_id)
        return
    record.note(work, case, EventKind.recorded(entry.reason.value), party=row.party, **report)


def _role(party: str | None) -> str:
    return addresses.PARTY_NAMES.get(party or "", "sender")


def merchant_failed(work: Work, case: Case, row: Outbox, failure: Failure, *, inbound_id: int | None) -> None:
    """The merchant's address is dead: flag it, escalate every open case of the merchant."""
    merchant = store.merchant(work.db, case.merchant_id)
    if merchant is None or merchant.support_email != row.recipient.lower():
        record.note(work, case, EventKind.OLD_ADDRESS_FAILED, party="m", status=failure.status)
        return  # about an address the merchant has replaced since
    spam = False  # a refusal of our mail is trouble now (casework.delivery_trouble), never a dead address
    already_invalid = merchant.address_invalid
    if not merchant.address_invalid:
        merchant.address_invalid = True
        merchant.address_invalid_at = work.now
        merchant.address_invalid_reason = " ".join(
            f"{merchant.support_email} does not exist ({failure.reason.value}): {failure.status or ''} "
            f"{failure.diagnostic or ''}".split())[:1000]
    reason = "merchant_bounced"
    extra = {"diagnostic": merchant.address_invalid_reason or "", "spam": spam}
    open_cases = work.db.scalars(select(Case).where(Case.merchant_id == merchant.merchant_id, Case.state != "closed")
                                 .order_by(Case.id).with_for_update().execution_options(populate_existing=True))
    for other in open_cases:
        if already_invalid and other.merchant_unreachable:
            continue  # a second bounce of the same dead address: staff know already
        was_escalated = other.escalated
        lifecycle.escalate(work, other, reason=reason, party=None, kind=EventKind.MERCHANT_BOUNCED,
                           inbound_id=inbound_id, extra=extra)
        if was_escalated:  # staff already on it: tell them the address is dead
            work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, other, "s",
                               {"problem": delivery_trouble.problem(row, failure)}, inbound_id=inbound_id)
        schedule.reschedule(work.db, other, work.settings)


def on_smtp_rejection(db, row: Outbox, *, error: str, now: datetime, settings, renderer) -> list[int]:
    """The smarthost refused `row` at send time (a 5xx, or a 4xx that lasted): read like a
    report. 554 5.7.1 for a virus or 552 5.3.4 for the size is that message's problem; only
    a refusal saying the address does not exist flags it."""
    code_text = error.split(" ", 1)[0]
    code = int(code_text) if code_text.isdigit() else None
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    work = Work(db=db, settings=settings, mailer=mailer, now=now)
    apply_report(work, row, smtp_failure(row.recipient, code, error), detected_by="smtp", inbound_id=None)
    return list(mailer.outbox_ids)


def clear_merchant(db, merchant_id: str, *, now: datetime, note: str = "") -> list[str] | None:
    """Staff cleared a merchant's address flag and delivery trouble (`merchants clear`):
    mail goes to the merchant again on its open cases; what failed is sent again with
    #retry on each case. Returns the references of the open cases, None for no merchant."""
    merchant = store.merchant(db, merchant_id, lock=True)
    if merchant is None:
        return None
    was = {"address_invalid": merchant.address_invalid, "trouble_reason": merchant.trouble_reason,
           "unreachable": merchant.unreachable_at is not None}
    merchant.address_invalid = False
    merchant.address_invalid_reason = None
    merchant.address_invalid_at = None
    delivery_trouble.clear(merchant)
    merchant.updated_at = now
    cases = db.scalars(select(Case).where(Case.merchant_id == merchant_id, Case.state != "closed")
                       .order_by(Case.id).with_for_update()).all()
    for case in cases:
        record.flag(Moment(db=db, now=now), case, EventKind.MERCHANT_ADDRESS_CLEARED, party="s", note=note[:500], **was)
    return [case.reference.upper() for case in cases]


def retry_merchant(step: Step, case: Case) -> int:
    """Staff #retry: send again, to the merchant's current address, what failed to reach it."""
    merchant = store.merchant(step.db, case.merchant_id)
    if merchant is None or merchant.address_invalid:
        record.note(step, case, EventKind.RETRY_REFUSED, party="s",
                    reason="the merchant's address is still marked invalid; re-import it first")
        return 0
    dead = set(step.db.scalars(select(Bounce.recipient).where(
        Bounce.case_id == case.id, Bounce.kind == FailureKind.DEAD.value)))
    failed = step.db.scalars(select(Outbox).where(
        Outbox.case_id == case.id, Outbox.party == "m",
        (Outbox.status == "failed") | (Outbox.recipient.in_(dead) & (Outbox.status == "sent")))
        .order_by(Outbox.id)).all()
    sent_ids = set()
    for row in failed:
        if row.message_id in sent_ids:
            continue
        sent_ids.add(row.message_id)
        message = email.message_from_bytes(row.raw, policy=compat32)  # same message, new address
        name = parseaddr(str(message.get("To") or ""))[0]
        del message["To"]
        message["To"] = formataddr((name, merchant.support_email))
        step.mailer.requeue(row, raw=message.as_bytes(policy=compat32.clone(linesep="\r\n")),
                            recipient=merchant.support_email)
        row.status = "superseded"
    record.flag(step, case, EventKind.DELIVERY_RETRIED, party="s", messages=len(sent_ids))
    return len(sent_ids)
