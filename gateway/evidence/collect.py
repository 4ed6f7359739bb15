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
from gateway.evidence.recognise import Fact, attachment_facts, recognise, unique
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


def message_facts(raw: bytes, new_text: str, *, today) -> list[tuple[Fact, str]]:
    """(fact, source) pairs of one message: its new text, then each attachment."""
    files = attachment_files.attachments(raw) if raw else []
    found = [(fact, "text") for fact in recognise(new_text, today=today, documents=bool(files))]
    for file in files:
        facts = attachment_facts(file.filename, file.content_type, len(file.data))
        text = attachment_files.text_of(file)
        if text:
            facts += recognise(text, today=today, documents=True)
        found += [(fact, file.filename) for fact in unique(facts)]
    return found


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
