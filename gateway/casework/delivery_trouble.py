"""Delivery trouble with an address that exists: a full mailbox, a block, an expiry, a
system error, or a message refused for its size or content.

The problem is recorded on the outbox row and the case; staff hear of it at most once per
merchant (or per case, for a customer) every `notify_staff_every_hours`, with the reason
and the remote server's words; a temporary refusal is sent again after each delay of
`retry_after_minutes`; and only when a merchant's trouble has lasted
`unreachable_after_hours` or `unreachable_after_reports` reports does the merchant count
as unreachable and its open cases escalate. A refused message (too large, taken for spam
or a virus) is that message's problem: never retried as is, never counted against the
address ([bounces] in config.example.toml; README "Delivery reports").
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gateway import addresses, store
from gateway.cases.machine import EventKind
from gateway.casework import lifecycle, record, schedule
from gateway.casework.work import Work
from gateway.mail.bounces import Failure, FailureKind, Reason
from gateway.models import Case, Event, Merchant, Outbox
from gateway.notices import Notice

# Reasons a new attempt cannot change: the sending MTA already retried for days (expired),
# or the message itself is what was refused.
_NOT_RETRIED = frozenset({Reason.EXPIRED})


def problem(row: Outbox, entry: Failure, **extra) -> dict:
    """What staff are told about one report (the staff_delivery_problem template's `problem`)."""
    return {"role": addresses.PARTY_NAMES.get(row.party or "", "sender"), "kind": entry.kind.value,
            "reason": entry.reason.value, "status": entry.status or "", "diagnostic": (entry.diagnostic or "")[:500],
            "recipient": row.recipient, "next_retry": "", "unreachable": False, "since": "", "notify_hours": 24,
            **extra}


def record_trouble(work: Work, row: Outbox, case: Case | None, entry: Failure, *, inbound_id: int | None) -> None:
    """A trouble or refused-message report for `row`: record, retry, tell staff, count."""
    row.delivery_problem = entry.reason.value
    row.delivery_problem_at = work.now
    row.last_error = " ".join(f"{entry.status or ''} {entry.diagnostic or entry.reason.value}".split())[:2000]
    next_retry = _schedule_retry(work, row, entry)
    if case is not None:
        record.note(work, case, EventKind.DELIVERY_PROBLEM, party=row.party, reason=entry.reason.value,
                    failure=entry.kind.value, status=entry.status, diagnostic=(entry.diagnostic or "")[:500],
                    retry_at=next_retry.isoformat() if next_retry else None)
    details = problem(row, entry, next_retry=next_retry.isoformat(timespec="minutes") if next_retry else "",
                      notify_hours=work.settings.bounces.notify_staff_every_hours)
    if row.party == "m" and case is not None:
        _merchant_trouble(work, case, row, entry, details, inbound_id=inbound_id)
    elif row.party == "c" and case is not None and _customer_not_told(work, case):
        record.note(work, case, EventKind.DELIVERY_PROBLEM_NOTIFIED, party="c")
        work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, case, "s", {"problem": details}, inbound_id=inbound_id)


def _schedule_retry(work: Work, row: Outbox, entry: Failure):
    """Put the row back in line after the next delay of the schedule, or leave it failed."""
    delays = work.settings.bounces.retry_after_minutes
    if entry.kind is not FailureKind.TROUBLE or entry.reason in _NOT_RETRIED or row.report_retries >= len(delays):
        if row.status in ("sent", "pending"):
            row.status = "failed"
        return None
    at = work.now + timedelta(minutes=delays[row.report_retries])
    row.report_retries += 1
    row.status = "pending"
    row.next_attempt_at = at
    row.lease_until = None  # the scheduler's sweep enqueues it when due
    return at


def _merchant_trouble(work: Work, case: Case, row: Outbox, entry: Failure, details: dict, *,
                      inbound_id: int | None) -> None:
    merchant = store.merchant(work.db, case.merchant_id)
    if merchant is None or merchant.support_email != row.recipient.lower():
        record.note(work, case, EventKind.OLD_ADDRESS_FAILED, party="m", status=entry.status)
        return
    if entry.kind is FailureKind.TROUBLE:
        # the trouble began when this message failed (or was handed over) at the latest
        began = min(t for t in (row.first_failure_at, row.sent_at, work.now) if t is not None)
        merchant.trouble_since = min(merchant.trouble_since, began) if merchant.trouble_since else began
        merchant.trouble_reports = (merchant.trouble_reports or 0) + 1
    merchant.trouble_reason = " ".join(f"{entry.reason.value}: {entry.status or ''} {entry.diagnostic or ''}"
                                       .split())[:1000]
    settings = work.settings.bounces
    lasting = entry.kind is FailureKind.TROUBLE and (
        merchant.trouble_since <= work.now - timedelta(hours=settings.unreachable_after_hours)
        or merchant.trouble_reports >= settings.unreachable_after_reports)
    details["since"] = merchant.trouble_since.isoformat(timespec="minutes") if merchant.trouble_since else ""
    if lasting and merchant.unreachable_at is None:
        merchant.unreachable_at = work.now
        details["unreachable"] = True
        merchant.trouble_notified_at = work.now
        mark_unreachable(work, merchant, row, details, inbound_id=inbound_id)
        return
    told = merchant.trouble_notified_at
    if told is None or told <= work.now - timedelta(hours=settings.notify_staff_every_hours):
        merchant.trouble_notified_at = work.now
        details["unreachable"] = merchant.unreachable_at is not None
        work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, case, "s", {"problem": details}, inbound_id=inbound_id)


def mark_unreachable(work: Work, merchant: Merchant, row: Outbox, details: dict, *, inbound_id: int | None) -> None:
    """The trouble lasted: every open case of the merchant escalates, staff told why."""
    extra = {"diagnostic": merchant.trouble_reason or "", "spam": False}
    open_cases = work.db.scalars(select(Case).where(Case.merchant_id == merchant.merchant_id, Case.state != "closed")
                                 .order_by(Case.id).with_for_update().execution_options(populate_existing=True))
    for other in open_cases:
        if other.merchant_unreachable:
            continue
        was_escalated = other.escalated
        lifecycle.escalate(work, other, reason="merchant_unreachable", party=None, kind=EventKind.MERCHANT_BOUNCED,
                           inbound_id=inbound_id, extra=extra)
        if was_escalated:
            work.mailer.notice(Notice.STAFF_DELIVERY_PROBLEM, other, "s", {"problem": details}, inbound_id=inbound_id)
        schedule.reschedule(work.db, other, work.settings)


def _customer_not_told(work: Work, case: Case) -> bool:
    since = work.now - timedelta(hours=work.settings.bounces.notify_staff_every_hours)
    return work.db.scalar(select(Event.id).where(Event.case_id == case.id, Event.kind == EventKind.DELIVERY_PROBLEM_NOTIFIED.value,
                                                 Event.at > since).limit(1)) is None


def clear(merchant: Merchant) -> None:
    """Forget a merchant's delivery trouble (it answered, a delivery was confirmed, staff cleared it)."""
    merchant.trouble_since = None
    merchant.trouble_reports = 0
    merchant.trouble_reason = None
    merchant.trouble_notified_at = None
    merchant.unreachable_at = None
