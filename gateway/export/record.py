"""Everything an export holds about one case, read from the database in one go: the case,
its parties, every message received (raw, envelope, sender check, attachments), every
message sent (with its delivery and any bounce), every event, and the evidence found.

This is the only module of the export that queries; the documents are built from the
CaseRecord it returns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.evidence import collect
from gateway.evidence.files import attachments as files_of
from gateway.export import names, receipt
from gateway.mail.attachments import BLOCKED_EXTENSIONS
from gateway.models import Bounce, Case, Event, Inbound, Merchant, Message, Outbox, Transaction


@dataclass(frozen=True)
class AttachmentItem:
    path: str  # inside data/
    name: str  # as the sender named it
    content_type: str
    data: bytes
    blocked: bool  # an executable type: stored with ".blocked" added so nobody runs it by a click

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class InboundItem:
    seq: int
    label: str  # customer | merchant | staff | bounce | other
    inbound: Inbound
    message: Message | None  # the case message (None for a bounce report, mail never placed on the case)
    eml: str  # path inside data/
    receipt: dict  # envelope and sender check
    attachments: tuple[AttachmentItem, ...]


@dataclass(frozen=True)
class OutgoingItem:
    seq: int
    row: Outbox
    eml: str
    bounces: tuple[Bounce, ...]


@dataclass
class CaseRecord:
    case: Case
    transaction: Transaction | None
    merchant: Merchant | None
    settings: Settings
    exported_at: datetime
    inbound: list[InboundItem] = field(default_factory=list)
    outgoing: list[OutgoingItem] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    messages: dict[int, Message] = field(default_factory=dict)
    evidence: list[collect.Found] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return self.case.reference.upper()

    def inbound_of_message(self, message_id: int | None) -> InboundItem | None:
        return next((item for item in self.inbound if item.message and item.message.id == message_id), None)


def read(db: Session, case: Case, *, settings: Settings, now: datetime, evidence: bool = True) -> CaseRecord:
    """The whole case, as it is at `now` (without reading the evidence when `evidence` is
    False: for comparing histories only)."""
    record = CaseRecord(case=case, transaction=db.get(Transaction, case.transaction_reference),
                        merchant=db.get(Merchant, case.merchant_id), settings=settings, exported_at=now)
    record.messages = {m.id: m for m in db.scalars(select(Message).where(Message.case_id == case.id)
                                                   .order_by(Message.created_at, Message.id))}
    record.events = list(db.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id)))
    record.inbound = _inbound(db, case, record, settings)
    record.outgoing = _outgoing(db, case)
    if evidence:
        record.evidence = collect.case_evidence(db, case, timezone=settings.timers.timezone)
        record.missing = collect.missing(case, record.evidence)
    return record


def _inbound(db: Session, case: Case, record: CaseRecord, settings: Settings) -> list[InboundItem]:
    by_inbound = {m.inbound_id: m for m in record.messages.values() if m.inbound_id is not None}
    bounce_inbound = set(db.scalars(select(Bounce.inbound_id).where(Bounce.case_id == case.id,
                                                                    Bounce.inbound_id.is_not(None))))
    rows = db.scalars(select(Inbound).where(or_(Inbound.case_id == case.id,
                                                Inbound.id.in_(list(by_inbound) + list(bounce_inbound))))
                      .order_by(Inbound.received_at, Inbound.id))
    items = []
    taken: set[str] = set()
    for seq, row in enumerate(rows, start=1):
        message = by_inbound.get(row.id)
        label = names.ROLES.get(message.party, "other") if message else ("bounce" if row.id in bounce_inbound
                                                                          else "other")
        stem = f"{seq:03d}-{label}"
        item_receipt = {**receipt.envelope(row), "sender_check": receipt.sender_check(
            message, record.events, authserv_id=settings.hygiene.authserv_id, raw=row.raw)}
        items.append(InboundItem(seq, label, row, message, f"messages/{stem}.eml", item_receipt,
                                 _attachments(row.raw, f"attachments/{stem}", taken)))
    return items


def _attachments(raw: bytes, folder: str, taken: set[str]) -> tuple[AttachmentItem, ...]:
    items = []
    for file in files_of(raw):
        name = names.safe(file.filename, default="attachment")
        blocked = name.rpartition(".")[2].lower() in BLOCKED_EXTENSIONS
        path = names.unique(f"{folder}/{name}{'.blocked' if blocked else ''}", taken)
        items.append(AttachmentItem(path, file.filename, file.content_type, file.data, blocked))
    return tuple(items)


def _outgoing(db: Session, case: Case) -> list[OutgoingItem]:
    bounces: dict[int, list[Bounce]] = {}
    for bounce in db.scalars(select(Bounce).where(Bounce.case_id == case.id).order_by(Bounce.id)):
        bounces.setdefault(bounce.outbox_id, []).append(bounce)
    rows = db.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.created_at, Outbox.id))
    items = []
    for seq, row in enumerate(rows, start=1):
        role = names.ROLES.get(row.party or "", "other")
        items.append(OutgoingItem(seq, row, f"outgoing/{seq:03d}-{role}-{names.safe(row.kind)}.eml",
                                  tuple(bounces.get(row.id, ()))))
    return items
