"""What happened on a case, read back: the transcript staff receive, why the case came to
staff, and what the merchant has received on it."""

from __future__ import annotations

from sqlalchemy import select

from gateway.addresses import PARTY_NAMES
from gateway.cases.machine import EventKind
from gateway.casework.work import Work
from gateway.models import Case, Event, Message, Outbox
from gateway.notices import Notice

MAX_TRANSCRIPT_ENTRIES = 200


def merchant_involved(work: Work, case: Case) -> bool:
    """Whether the merchant has received anything on this case."""
    return work.db.scalar(select(Outbox.id).where(Outbox.case_id == case.id, Outbox.party == "m").limit(1)) is not None


def merchant_told_of_escalation(work: Work, case: Case) -> str:
    """What the merchant knows of staff taking the case: "told" (it got the escalation
    notice), "not_told" (it had mail on the case, but not that notice: its address failed)
    or "nothing" (it never received anything on this case)."""
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
