"""Delivery failures: a DSN at a VERP address, a bounce in another format, or a 5xx at send
time, tied to the outbox row (and so the case and party) it is about.

A permanent failure of the merchant's address flags the merchant invalid (for all its
cases), escalates its open cases at once with staff told why, and stops mail to the dead
address; the customer's address failing is shown to staff only. Delay warnings and soft
failures are recorded; a soft failure still failing after `soft_bounce_hard_after_hours`
counts as hard.
"""

from __future__ import annotations

import email
from email.policy import compat32
from email.utils import formataddr, parseaddr

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from gateway import addresses, store
from gateway.cases.machine import EventKind
from gateway.flows import lifecycle
from gateway.flows.step import Step, Work
from gateway.mail.bounces import Failure, FailureKind, Verdict
from gateway.mail.bounces.base import smtp_failure
from gateway.mail.classify import Kind
from gateway.models import Bounce, Case, Outbox
from gateway.notices import Notice
from gateway.outgoing import Mailer

log = logging.getLogger(__name__)
UNADDRESSED_LOOKBACK_DAYS = 30


def handle_verp(step: Step, token: str) -> None:
    """A message to bounce+<token>@: it reports on exactly one outbox row and recipient."""
    row = step.db.scalar(select(Outbox).where(Outbox.verp_token == token))
    if row is None:
        step.done(f"unplaced: message to the VERP address of an outbox row that no longer exists ({token})")
        return
    case = store.case_by_id(step.db, row.case_id) if row.case_id else None  # apply_failure locks
    kind = step.classification.kind
    if kind is not Kind.BOUNCE:
        # Vacation responders answer the envelope sender, which is our VERP address.
        if case is not None:
            store.add_event(step.db, case, f"{kind.value}_recorded", at=step.now, party=row.party,
                            reason=f"{step.classification.reason} (sent to the bounce address)")
        step.done(f"{kind.value} to the bounce address of outbox {row.id}: recorded, not relayed",
                  case_id=row.case_id)
        return
    failure = _failure_for(row.recipient, step.verdict)
    apply_failure(step, row, failure, detected_by=f"verp/{step.verdict.detected_by}", inbound_id=step.inbound.id)
    step.done(f"bounce ({failure.kind.value} {failure.status or ''}) for outbox {row.id} to the "
              f"{_role(row.party)}", case_id=row.case_id)


def _failure_for(recipient: str, verdict: Verdict) -> Failure:
    """The failure a VERP bounce reports for `recipient` (the VERP address names the recipient
    even when the report names an alias or nothing readable)."""
    for failure in verdict.failures:
        if failure.recipient == recipient.lower():
            return failure
    if verdict.failures:
        first = verdict.failures[0]
        return Failure(recipient.lower(), first.kind, first.status, first.diagnostic)
    return Failure(recipient.lower(), FailureKind.HARD, None, "bounce without a readable delivery report")


def handle_unaddressed(step: Step) -> None:
    """A bounce that did not come back to a VERP address: act on a failed address only when
    the bounce quotes the Message-ID of what we sent it (anyone can write a fake report
    naming a merchant's address; only a real bounce carries our message back)."""
    since = step.now - timedelta(days=UNADDRESSED_LOOKBACK_DAYS)
    raw = step.inbound.raw
    matched, unproven = 0, []
    for failure in step.verdict.failures:
        rows = step.db.scalars(
            select(Outbox).where(Outbox.recipient == failure.recipient, Outbox.created_at >= since,
                                 Outbox.status.in_(("sent", "failed")))
            .order_by(Outbox.id.desc()).limit(50)).all()
        row = next((r for r in rows if r.message_id.encode() in raw), None)
        if row is None:
            if rows:
                unproven.append(failure.recipient)
            continue
        matched += 1
        apply_failure(step, row, failure, detected_by=step.verdict.detected_by, inbound_id=step.inbound.id)
        if row.case_id is not None:
            step.inbound.case_id = row.case_id
    if matched:
        step.done(f"bounce for {matched} address(es) we wrote to, detected by {step.verdict.detected_by}",
                  case_id=step.inbound.case_id)
    elif unproven:
        step.done(f"unplaced: bounce naming {', '.join(unproven)} without any Message-ID we sent: "
                  "not trusted, nothing changed")
    else:
        found = ", ".join(f.recipient for f in step.verdict.failures) or "no address found"
        step.done(f"unplaced: bounce for addresses we did not write to recently ({found})")


def apply_failure(work: Work, row: Outbox, failure: Failure, *, detected_by: str, inbound_id: int | None) -> None:
    """Record a failure of `row` and act on it."""
    if not failure.kind.permanent and _soft_for_too_long(work, row):
        hours = work.settings.hygiene.soft_bounce_hard_after_hours
        failure = Failure(failure.recipient, FailureKind.HARD, failure.status,
                          f"still not delivered after {hours} hours: {failure.diagnostic or ''}".strip())
    # Locks in one order everywhere: the merchant (a merchant failure touches all its cases),
    # then the case, and both before inserting anything that references them (two failures
    # recorded at once would otherwise both hold key-share locks and deadlock on FOR UPDATE).
    if row.party == "m" and row.case_id is not None:
        merchant_id = work.db.scalar(select(Case.merchant_id).where(Case.id == row.case_id))
        if merchant_id is not None:
            store.merchant(work.db, merchant_id, lock=True)
    case = store.case_by_id(work.db, row.case_id, lock=True) if row.case_id else None
    work.db.add(Bounce(outbox_id=row.id, inbound_id=inbound_id, case_id=row.case_id, recipient=row.recipient,
                       kind=failure.kind.value, status=failure.status, diagnostic=(failure.diagnostic or "")[:2000],
                       detected_by=detected_by, created_at=work.now))
    detail = {"recipient_party": row.party, "status": failure.status, "failure": failure.kind.value}
    if failure.kind is FailureKind.DELAYED:
        if case is not None:
            store.add_event(work.db, case, "delivery_delayed", at=work.now, party=row.party, **detail)
        return
    if failure.kind is FailureKind.SOFT:
        if case is not None:
            store.add_event(work.db, case, "delivery_soft_failure", at=work.now, party=row.party, **detail)
        return
    if case is not None:
        store.add_event(work.db, case, "delivery_failed", at=work.now, party=row.party, **detail)
    if row.party == "m" and case is not None:
        merchant_failed(work, case, row, failure, inbound_id=inbound_id)
    elif row.party == "c" and case is not None:
        work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, case, "s", {"problem": _problem(row, failure)},
                           inbound_id=inbound_id)
    elif row.party == "s":
        log.warning("a staff address failed: %s (%s %s)", row.recipient, failure.status, failure.diagnostic)


def _soft_for_too_long(work: Work, row: Outbox) -> bool:
    """Whether a temporary failure of `row` has lasted `soft_bounce_hard_after_hours`:
    counted from our first failed attempt, or from the hand-over to the smarthost when the
    smarthost reports it (a delay warning or temporary failure in a DSN)."""
    start = row.first_failure_at or row.sent_at
    hours = work.settings.hygiene.soft_bounce_hard_after_hours
    return start is not None and start <= work.now - timedelta(hours=hours)


def _problem(row: Outbox, failure: Failure) -> dict:
    return {"role": _role(row.party), "kind": failure.kind.value, "status": failure.status or "",
            "diagnostic": (failure.diagnostic or "")[:500]}


def _role(party: str | None) -> str:
    return addresses.PARTY_NAMES.get(party or "", "sender")


def merchant_failed(work: Work, case: Case, row: Outbox, failure: Failure, *, inbound_id: int | None) -> None:
    """The merchant's address is dead: flag it, escalate every open case of the merchant."""
    merchant = store.merchant(work.db, case.merchant_id)
    if merchant is None or merchant.support_email != row.recipient.lower():
        store.add_event(work.db, case, "old_address_failed", at=work.now, party="m", status=failure.status)
        return  # about an address the merchant has replaced since
    spam = failure.kind is FailureKind.SPAM
    already_invalid = merchant.address_invalid
    if not merchant.address_invalid:
        merchant.address_invalid = True
        merchant.address_invalid_at = work.now
        kind_text = "refused as spam or by policy" if spam else "does not accept mail"
        merchant.address_invalid_reason = " ".join(
            f"{merchant.support_email} {kind_text}: {failure.status or ''} {failure.diagnostic or ''}".split())[:1000]
    reason = "merchant_spam_rejection" if spam else "merchant_bounced"
    extra = {"diagnostic": merchant.address_invalid_reason or "", "spam": spam}
    open_cases = work.db.scalars(select(Case).where(Case.merchant_id == merchant.merchant_id, Case.state != "closed")
                                 .order_by(Case.id).with_for_update().execution_options(populate_existing=True))
    from gateway import timer_jobs

    for other in open_cases:
        if already_invalid and other.merchant_unreachable:
            continue  # a second bounce of the same dead address: staff know already
        was_escalated = other.escalated
        lifecycle.escalate(work, other, reason=reason, party=None, kind=EventKind.MERCHANT_BOUNCED,
                           inbound_id=inbound_id, extra=extra)
        other.merchant_unreachable = True
        if was_escalated:  # staff already on it: tell them the address is dead
            work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, other, "s", {"problem": _problem(row, failure)},
                               inbound_id=inbound_id)
        timer_jobs.reschedule(work.db, other, work.settings)


def on_smtp_rejection(db, row: Outbox, *, error: str, now: datetime, settings, renderer) -> list[int]:
    """A 5xx from the smarthost at delivery time: handled exactly like a hard bounce of `row`."""
    code_text = error.split(" ", 1)[0]
    code = int(code_text) if code_text.isdigit() else None
    mailer = Mailer(db=db, settings=settings, renderer=renderer, now=now)
    work = Work(db=db, settings=settings, mailer=mailer, now=now)
    apply_failure(work, row, smtp_failure(row.recipient, code, error), detected_by="smtp", inbound_id=None)
    return list(mailer.outbox_ids)


def retry_merchant(step: Step, case: Case) -> int:
    """Staff #retry: send again, to the merchant's current address, what failed to reach it."""
    merchant = store.merchant(step.db, case.merchant_id)
    if merchant is None or merchant.address_invalid:
        store.add_event(step.db, case, "retry_refused", at=step.now, party="s",
                        reason="the merchant's address is still marked invalid; re-import it first")
        return 0
    dead = set(step.db.scalars(select(Bounce.recipient).where(
        Bounce.case_id == case.id, Bounce.kind.in_((FailureKind.HARD.value, FailureKind.SPAM.value)))))
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
    case.merchant_unreachable = False
    store.add_event(step.db, case, "delivery_retried", at=step.now, party="s", messages=len(sent_ids))
    return len(sent_ids)
