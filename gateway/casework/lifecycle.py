"""Escalation, closing and reopening: the case events that bring staff in or end a case,
whoever causes them (a command, a timer, a bounce)."""

from __future__ import annotations

from gateway import rights, store
from gateway.cases.machine import EventKind
from gateway.casework.history import merchant_involved, transcript
from gateway.casework import record
from gateway.casework.record import move
from gateway.casework.work import Work
from gateway.evidence import collect
from gateway.models import Case
from gateway.notices import Notice


def merchant_reachable(work: Work, case: Case) -> bool:
    merchant = work.parties.merchant_of(case)
    return merchant is not None and not merchant.address_invalid


def rights_context(work: Work, case: Case, *, escalation_date=None) -> dict:
    tx = work.parties.transaction_of(case)
    deadline, rule = rights.legal_deadline(case.dispute_type, tx.transaction_date if tx else case.opened_at)
    return {"rights": {"legal_deadline": deadline, "legal_rule": rule, "escalation_date": escalation_date,
                       "gateway_reply_deadline": escalation_date,
                       "evidence": collect.request(work.db, case, timezone=work.settings.timers.timezone)}}


def escalate(work: Work, case: Case, *, reason: str, party: str | None, kind: EventKind = EventKind.ESCALATED,
             inbound_id: int | None = None, extra: dict | None = None) -> bool:
    """Bring staff in: flag, send staff the whole history, tell both parties their rights."""
    already = case.escalated
    if not move(work, case, kind, party=party, reason=reason):
        return False
    if already:
        return True
    mailer = work.mailer
    context = {"escalation": {"reason": reason, **(extra or {})}, "transcript": transcript(work, case)}
    mailer.notice(Notice.STAFF_ESCALATION, case, "s", context, inbound_id=inbound_id)
    rights = rights_context(work, case)
    mailer.notice(Notice.ESCALATION_CUSTOMER, case, "c", {**rights, "escalation": {"reason": reason}},
                  inbound_id=inbound_id)
    if merchant_reachable(work, case) and merchant_involved(work, case):
        mailer.notice(Notice.ESCALATION_MERCHANT, case, "m", {**rights, "escalation": {"reason": reason}},
                      inbound_id=inbound_id)
    return True


def close(work: Work, case: Case, kind: EventKind, *, party: str | None, note: str = "",
          inbound_id: int | None = None) -> bool:
    """Close the case and confirm it to both parties (and staff when they were involved)."""
    if not move(work, case, kind, party=party, note=note[:2000]):
        return False
    record.set_next_due(case, None)
    context = {"closing": {"reason": case.closed_reason, "note": note}}
    work.mailer.notice(Notice.CASE_CLOSED, case, "c", context, inbound_id=inbound_id)
    if merchant_reachable(work, case) and merchant_involved(work, case):
        work.mailer.notice(Notice.CASE_CLOSED, case, "m", context, inbound_id=inbound_id)
    if case.escalated or case.category == "payment":
        work.mailer.notice(Notice.CASE_CLOSED, case, "s", context, inbound_id=inbound_id)
    return True


def reopen(work: Work, case: Case, *, party: str, inbound_id: int | None = None) -> bool:
    """Reopen a closed case with staff (unless the transaction has another open case)."""
    other = store.open_case_for_transaction(work.db, case.transaction_reference)
    if other is not None and other.id != case.id:
        record.note(work, case, EventKind.REOPEN_REFUSED, party=party,
                    reason=f"case {other.reference.upper()} is open for the same transaction")
        return False
    if not move(work, case, EventKind.REOPENED, party=party):
        return False
    return True
