"""SQLAlchemy 2 tables: merchants, transactions, inbound mail, cases, parties, messages,
events, outbox, bounces. Enum values (never code identifiers) are what gets stored."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only autoincrements INTEGER


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Merchant(Base):
    __tablename__ = "merchants"

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    support_email: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(8))
    address_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    address_invalid_reason: Mapped[str | None] = mapped_column(Text)
    address_invalid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Delivery trouble with an address that exists (full mailbox, block, expiry...): since
    # when, how many reports, the last reason, when staff were last told, and when the
    # trouble had lasted long enough to count the merchant unreachable.
    trouble_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    trouble_reports: Mapped[int] = mapped_column(Integer, default=0)
    trouble_reason: Mapped[str | None] = mapped_column(Text)
    trouble_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unreachable_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Transaction(Base):
    __tablename__ = "transactions"

    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference_key: Mapped[str] = mapped_column(String(64), unique=True)  # lower case, for lookups
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.merchant_id"))
    customer_email: Mapped[str] = mapped_column(String(320), index=True)  # lower case
    customer_name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    transaction_date: Mapped[datetime] = mapped_column(UtcDateTime)
    customer_locale: Mapped[str | None] = mapped_column(String(8))  # None: the configured default
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Inbound(Base):
    """One message as received: raw bytes and envelope, kept forever."""

    __tablename__ = "inbound"
    __table_args__ = (Index("ix_inbound_status_lease", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))  # smtp | imap | cli
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | processed | quarantined
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disposition: Mapped[str | None] = mapped_column(Text)  # what processing decided, in words
    outcome: Mapped[str | None] = mapped_column(String(16))  # ... and as a value: dispositions.Disposition
    error: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # set while an attempt runs: a new attempt that finds it set knows the last one died
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    holder: Mapped[str | None] = mapped_column(String(80))  # the process of the last attempt
    client_address: Mapped[str | None] = mapped_column(String(64))  # who handed it to us (SMTP), for SPF
    client_helo: Mapped[str | None] = mapped_column(String(255))


class StaffReport(Base):
    """A quarantined or unplaced message staff are to hear of: at once, or in the next
    digest when another report went out within [workers] quarantine_digest_minutes."""

    __tablename__ = "staff_reports"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound.id"))
    problem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # at most one open case per transaction, even with several workers opening at once
        Index("uq_cases_open_transaction", "transaction_reference", unique=True,
              sqlite_where=text("state <> 'closed'"), postgresql_where=text("state <> 'closed'")),
        # the scheduler's lost-jobs check: only claimed cases carry a lease (migration 0014)
        Index("ix_cases_timer_lease_until", "timer_lease_until", sqlite_where=text("timer_lease_until IS NOT NULL"),
              postgresql_where=text("timer_lease_until IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    transaction_reference: Mapped[str] = mapped_column(ForeignKey("transactions.reference"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.merchant_id"), index=True)
    customer_email: Mapped[str] = mapped_column(String(320))
    category: Mapped[str | None] = mapped_column(String(16))  # payment | delivery | None: ask
    dispute_type: Mapped[str] = mapped_column(String(32), default="other")
    state: Mapped[str] = mapped_column(String(24))
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    merchant_unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_reason: Mapped[str | None] = mapped_column(String(24))
    subject: Mapped[str] = mapped_column(String(200))
    customer_locale: Mapped[str] = mapped_column(String(8))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    waiting_since: Mapped[datetime] = mapped_column(UtcDateTime)
    transaction_date: Mapped[datetime | None] = mapped_column(UtcDateTime)  # copied: the 180-day clock
    last_customer_message_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_merchant_message_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_staff_message_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    merchant_asked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # staff last wrote to the merchant
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    timer_lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TimerSend(Base):
    """A timer action done (or skipped) once: (case, kind, period, sequence) is unique, so a
    reminder can never be sent twice, even with two schedulers or a retried job."""

    __tablename__ = "timer_sends"
    __table_args__ = (UniqueConstraint("case_id", "kind", "period", "sequence"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(40))  # start of the waiting period it belongs to
    sequence: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # done | skipped
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class Party(Base):
    """One side of a case and the state of its mail thread (Message-IDs it has seen)."""

    __tablename__ = "parties"
    __table_args__ = (UniqueConstraint("case_id", "role"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    role: Mapped[str] = mapped_column(String(1))  # c | m | s
    thread_refs: Mapped[list[str]] = mapped_column(JSON, default=list)


class Message(Base):
    """A message on a case: inbound (from a party) or a relay/notice we sent."""

    __tablename__ = "messages"
    # the scheduler's held-mail digest: held messages staff have not heard of (migration 0014)
    __table_args__ = (Index("ix_messages_held_staff_told", "held", "staff_told_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    party: Mapped[str] = mapped_column(String(1))  # who wrote it (in) or who receives it (out)
    kind: Mapped[str] = mapped_column(String(32))  # human | auto_reply | bounce | notice name
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    new_text: Mapped[str] = mapped_column(Text, default="")
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    held_reason: Mapped[str | None] = mapped_column(Text)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # a held message: who it says it is from (senders.Sender.summary()) and the reason
    sender: Mapped[dict | None] = mapped_column(JSON)
    staff_told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # held: when staff heard of it


class Event(Base):
    """Append-only case history: who did what, when, with which message."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(40))
    party: Mapped[str | None] = mapped_column(String(1))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Outbox(Base):
    """One outgoing message to one recipient; delivered by the `deliver` actor."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound.id"))
    party: Mapped[str | None] = mapped_column(String(1))  # c | m | s, None outside a case
    kind: Mapped[str] = mapped_column(String(40))  # relay | notice name
    recipient: Mapped[str] = mapped_column(String(320))
    verp_token: Mapped[str] = mapped_column(String(32), unique=True)
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_reply: Mapped[str | None] = mapped_column(Text)  # the smarthost's answer to DATA (its queue id)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_failure_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The process sending it while 'sending' (a ProcessHeartbeat id); its heartbeat renews lease_until.
    holder: Mapped[str | None] = mapped_column(String(80), index=True)
    # The last attempt's outcome is unknown (the connection was lost after the data was sent,
    # or its sender stopped mid-delivery): the smarthost may already have the message.
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # What delivery reports said: the last problem (a reason), retries it caused, and
    # evidence of delivery (a success DSN: who reported it, when, with what status).
    delivery_problem: Mapped[str | None] = mapped_column(String(32))
    delivery_problem_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    report_retries: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivery_report: Mapped[dict | None] = mapped_column(JSON)


class Bounce(Base):
    """A delivery failure tied to an outbox row: a DSN, a bounce message or a 5xx at send time."""

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))  # dead | trouble | message | delayed (FailureKind)
    reason: Mapped[str] = mapped_column(String(32), default="undefined")  # Reason (Sisimai's names)
    status: Mapped[str | None] = mapped_column(String(16))
    diagnostic: Mapped[str | None] = mapped_column(Text)
    detected_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SendLog(Base):
    """Automatic mail sent per address, for the per-hour/per-day notice ladder."""

    __tablename__ = "send_log"
    __table_args__ = (Index("ix_send_log_recipient_at", "recipient", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    recipient: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(40))


class ProcessHeartbeat(Base):
    """One running gateway process (worker, scheduler, run, serve-smtp): when it last said
    it was alive, what it serves. Health reads it; the sweep tells a stopped holder from a
    slow one by it."""

    __tablename__ = "process_heartbeats"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # host:pid:token
    role: Mapped[str] = mapped_column(String(16))  # worker | scheduler | run | serve-smtp
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    broker_id: Mapped[str | None] = mapped_column(String(64))  # its Dramatiq consumer's id in Redis
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    beat_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    stop_reason: Mapped[str | None] = mapped_column(Text)


class Instance(Base):
    """This installation's random id (one row): names its folder in the sent-journal
    directory, so two gateways sharing a host never record each other's deliveries; and
    what its open cases were last rescheduled with."""

    __tablename__ = "gateway_instance"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # what the open cases' due times were last computed with (casework/schedule.py): a
    # scheduler that starts with the same recomputes none of them
    timers_fingerprint: Mapped[str | None] = mapped_column(String(64))


class ApiIdempotency(Base):
    """An HTTP call made with an Idempotency-Key: its answer, replayed to a retry of the same
    call (same token, same key, same body) instead of doing the work twice."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("token_name", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and body
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
