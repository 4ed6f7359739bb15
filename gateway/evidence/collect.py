"""The evidence of one case: every fact recognised in the messages its parties wrote
(their new text and their attachments), each with the message it came from.

Only messages a party really wrote count: human mail on the case, not held for a sender
mismatch (unless staff released it); auto-replies, bounces and the gateway's own notices
never do. The facts are read again each time (nothing is stored), so a better recogniser
reads old cases better too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.evidence import files as attachment_files
from gateway.evidence import needs
from gateway.evidence.recognise import (ORDER_RECORD, PRODUCT_DESCRIPTION, PROOF_OF_DELIVERY, RETURN_OFFER, Fact,
                                        attachment_facts, recognise, unique)
from gateway.models import Case, Inbound, Message


@dataclass(frozen=True)
class Found:
    fact: Fact
    message_id: int  # the case message (messages.id) it was read from
    party: str  # c | m | s
    at: datetime  # when that message was received
    source: str  # "text", or the attachment's file name

    def as_dict(self) -> dict:
        fact = self.fact
        return {"kind": fact.kind, "value": fact.value, "carrier": fact.carrier, "qualifier": fact.qualifier,
                "excerpt": fact.excerpt, "message": self.message_id, "party": self.party,
                "at": self.at.isoformat(), "source": self.source}


# A message proves these once, however many times it names them ("the invoice is
# attached" and the attached invoice are one invoice); the attachment is what is kept.
ONCE_PER_MESSAGE = frozenset({PROOF_OF_DELIVERY, PRODUCT_DESCRIPTION, ORDER_RECORD, RETURN_OFFER})


def message_facts(raw: bytes, new_text: str, *, today) -> list[tuple[Fact, str]]:
    """(fact, source) pairs of one message: its attachments' facts, then its new text's."""
    files = attachment_files.attachments(raw) if raw else []
    from_files = []
    for file in files:
        facts = attachment_facts(file.filename, file.content_type, len(file.data))
        text = attachment_files.text_of(file)
        if text:
            facts += recognise(text, today=today, documents=True)
        from_files += [(fact, file.filename) for fact in unique(facts)]
    in_files = {fact.kind for fact, _ in from_files}
    found = [(fact, "text") for fact in recognise(new_text, today=today, documents=bool(files))
             if not (fact.kind in ONCE_PER_MESSAGE and fact.kind in in_files)] + from_files
    kept, seen = [], set()
    for fact, source in found:
        if fact.kind in ONCE_PER_MESSAGE:
            if fact.kind in seen:
                continue
            seen.add(fact.kind)
        kept.append((fact, source))
    return kept


def party_messages(db: Session, case: Case) -> list[tuple[Message, Inbound]]:
    """The messages the parties wrote on `case`, oldest first, with their raw rows."""
    query = (select(Message, Inbound).join(Inbound, Inbound.id == Message.inbound_id)
             .where(Message.case_id == case.id, Message.direction == "in", Message.kind == "human",
                    or_(Message.held.is_(False), Message.released_at.is_not(None)))
             .order_by(Message.created_at, Message.id))
    return [(message, inbound) for message, inbound in db.execute(query)]


def case_evidence(db: Session, case: Case, *, timezone: str = "UTC") -> list[Found]:
    """Every fact found on `case`, in the order the messages came; a fact already found in
    an earlier message is not repeated."""
    zone = ZoneInfo(timezone)
    found: list[Found] = []
    seen: set[tuple[str, str, str | None]] = set()
    for message, inbound in party_messages(db, case):
        today = message.created_at.astimezone(zone).date()
        for fact, source in message_facts(inbound.raw, message.new_text, today=today):
            key = (fact.kind, fact.value.upper(), fact.qualifier)
            if key in seen:
                continue
            seen.add(key)
            found.append(Found(fact, message.id, message.party, message.created_at, source))
    return found


def missing(case: Case, found: list[Found]) -> list[str]:
    """What the case's dispute type still needs (see needs.NEEDS)."""
    return needs.missing(case.dispute_type, [f.fact for f in found])


def request(db: Session, case: Case, *, timezone: str = "UTC") -> dict:
    """What a notice to the merchant asks for: the needs of the case's type still missing,
    and what was already received towards them (one fact per need)."""
    found = case_evidence(db, case, timezone=timezone)
    facts = [f.fact for f in found]
    received = []
    for need in needs.NEEDS.get(case.dispute_type, ()):
        fact = next((f for f in facts if needs.satisfied(need, [f])), None)
        if fact is not None and fact not in received:
            received.append(fact)
    return {"missing": needs.missing(case.dispute_type, facts),
            "found": [{"kind": f.kind, "value": f.value, "carrier": f.carrier} for f in received]}
