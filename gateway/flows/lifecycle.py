"""Escalation, closing and reopening: the case events that bring staff in or end a case,
whoever causes them (a command, a timer, a bounce)."""

from __future__ import annotations

from sqlalchemy import select

from gateway import store
from gateway.addresses import PARTY_NAMES
from gateway.cases.machine import EventKind
from gateway.flows.opening import move
from gateway.flows.step import Work
from gateway.models import Case, Event, Message
from gateway.notices import Notice

MAX_TRANSCRIPT_ENTRIES = 200


def merchant_reachable(work: Work, case: Case) -> bool:
    merchant = work.mailer.merchant_of(case)
    return merchant is not None and not merchant.address_invalid


def merchant_involved(work: Work, case: Case) -> bool:
    """Whether the merchant has received anything on this case."""
    from gateway.models import Outbox

    return work.db.scalar(select(Outbox.id).where(Outbox.case_id == case.id, Outbox.party == "m").limit(1)) is not None


def merchant_told_of_escalation(work: Work, case: Case) -> str:
    """What the merchant knows of staff taking the case: "told" (it got the escalation
    notice), "not_told" (it had mail on the case, but not that notice: its address failed)
    or "nothing" (it never received anything on this case)."""
    from gateway.models import Outbox

    kinds = set(work.db.scalars(select(Outbox.kind).where(Outbox.case_id == case.id, Outbox.party == "m")))
    if Notice.ESCALATION_MERCHANT.value in kinds:
        return "told"
    return "not_told" if kinds else "nothing"


def transcript(work: Work, case: Case) -> list[dict]:
    """The case history for staff: every event in order, with the text of its message."""
    messages = {m.id: m for m in work.db.scalars(select(Message).where(Message.case_id == case.id))}
    entries = []
    for event in work.db.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.at, Event.id)):
        message = messages.get(event.message_id) if event.message_id else None
        entries.append({
            "at": event.at,
            "who": PARTY_NAMES.get(event.party or "", "gateway"),
            "what": event.kind.replace("_", " "),
            "text": (message.new_text if message is not None and message.direction == "in" else "")[:4000],
        })
    return entries[-MAX_TRANSCRIPT_ENTRIES:]


def escalation_reason(work: Work, case: Case) -> str | None:
    """Why the case came to staff: the `reason` of the escalation that moved it there (a
    later #escalate on a case already with staff changes nothing)."""
    kinds = (EventKind.ESCALATED.value, EventKind.MERCHANT_BOUNCED.value, EventKind.REOPENED.value)
    for event in work.db.scalars(select(Event).where(Event.case_id == case.id, Event.kind.in_(kinds),
                                                     Event.at <= case.waiting_since)
                                 .order_by(Event.at.desc(), Event.id.desc())):
        if event.detail.get("applied", True):
            return event.detail.get("reason") or ("reopened" if event.kind == EventKind.REOPENED.value else None)
    return None


def rights_context(work: Work, case: Case, *, escalation_date=None) -> dict:
    from gateway import rights

    tx = work.mailer.transaction_of(case)
    deadline, rule = rights.legal_deadline(case.dispute_type, tx.transaction_date if tx else case.opened_at)
    from gateway.evidence import collect

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
    case.next_due_at = None
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
        store.add_event(work.db, case, "reopen_refused", at=work.now, party=party,
                        reason=f"case {other.reference.upper()} is open for the same transaction")
        return False
    if not move(work, case, EventKind.REOPENED, party=party):
        return False
    case.closed_reason = None
    case.closed_at = None
    return True
