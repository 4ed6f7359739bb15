"""Queries and inserts. Each takes the session first and never commits (db.py does)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Iterable, Sequence

from sqlalchemy import case as sql_case
from sqlalchemy import bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from gateway.dispositions import UNPLACED
from gateway.mail.fingerprint import fingerprint
from gateway.mail.parse import decode, message_ids
from gateway.models import (ApiIdempotency, Case, Event, Inbound, Instance, Merchant, Message, Outbox, Party,
                            ProcessHeartbeat, SendLog, Transaction, UtcDateTime)

_HEADER_PARSER = BytesHeaderParser(policy=compat32)


def dedupe_key(raw: bytes, rcpt_tos: Sequence[str]) -> tuple[str, str | None]:
    """(key, Message-ID): the same message to the same recipients gives the same key.

    The key is `fingerprint.fingerprint`: the content below the trace headers an MTA
    prepends, so a copy that gained a Received header on a second delivery is recognised
    with or without a Message-ID, and a different message reusing a Message-ID is not.
    The Message-ID is kept for reference only.
    """
    try:
        headers = _HEADER_PARSER.parsebytes(raw[:_HEADER_BYTES], headersonly=True)
        ids = message_ids(decode(headers.get("Message-ID")))
    except Exception:  # headers too broken to read: no Message-ID to note
        ids = ()
    return fingerprint(raw, rcpt_tos), (ids[0][:998] if ids else None)


_HEADER_BYTES = 256 * 1024  # enough for any real header block; the Message-ID is only noted


_INBOUND = Inbound.__table__


def save_inbound(
    db: Session,
    *,
    raw: bytes,
    mail_from: str,
    rcpt_tos: Sequence[str],
    source: str,
    now: datetime,
    lease_seconds: int,
    client_address: str | None = None,
    client_helo: str | None = None,
) -> tuple[int, bool]:
    """Store one received message; returns (inbound id, whether it was a duplicate).
    `client_address`/`client_helo`: who handed it over by SMTP (for the SPF check)."""
    key, message_id = dedupe_key(raw, rcpt_tos)
    # One INSERT that does nothing when the key is already stored (a second delivery, or
    # another ingress process a moment before): no read first, no savepoint.
    inserted = db.execute(_INSERT_INBOUND[db.get_bind().dialect.name], dict(
        received_at=now, source=source, mail_from=mail_from, rcpt_tos=[r.lower() for r in rcpt_tos], raw=raw,
        size=len(raw), dedupe_key=key, message_id=message_id, status="queued", attempts=0,
        lease_until=now + timedelta(seconds=lease_seconds), client_address=(client_address or None) and client_address[:64],
        client_helo=(client_helo or None) and client_helo[:255],
    )).scalar()
    if inserted is not None:
        return inserted, False
    return db.scalar(select(Inbound.id).where(Inbound.dedupe_key == key)), True


# INSERT ... ON CONFLICT DO NOTHING RETURNING id for each backend (they spell it alike),
# built once; the values come with each execution
_INSERT_INBOUND = {name: insert(_INBOUND).on_conflict_do_nothing(index_elements=[_INBOUND.c.dedupe_key])
                   .returning(_INBOUND.c.id)
                   for name, insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))}


_CLAIM_INBOUND = (update(Inbound).where(Inbound.id == bindparam("inbound_id"), Inbound.status == "queued")
                  .values(lease_until=bindparam("claim_lease_until", type_=UtcDateTime())).returning(Inbound)
                  .execution_options(populate_existing=True, synchronize_session=False))


def claim_inbound(db: Session, inbound_id: int, *, now: datetime, lease_seconds: int) -> Inbound | None:
    """Lock a queued inbound row for processing and renew its lease, or None if another run
    did it already (attempts are counted by `pipeline.begin_attempt`, in a transaction of
    their own). One UPDATE ... RETURNING, built once: the row it returns is locked and refreshed."""
    return db.scalar(_CLAIM_INBOUND, {"inbound_id": inbound_id,
                                      "claim_lease_until": now + timedelta(seconds=lease_seconds)})


def transactions_by_keys(db: Session, keys: Iterable[str]) -> list[Transaction]:
    keys = list(dict.fromkeys(k.lower() for k in keys))[:500]
    if not keys:
        return []
    return list(db.scalars(select(Transaction).where(Transaction.reference_key.in_(keys))))


def recent_transactions(db: Session, customer_email: str, *, limit: int = 10) -> list[Transaction]:
    query = (
        select(Transaction)
        .where(Transaction.customer_email == customer_email.lower())
        .order_by(Transaction.transaction_date.desc())
        .limit(limit)
    )
    return list(db.scalars(query))


def open_case_for_transaction(db: Session, reference: str) -> Case | None:
    query = (select(Case).where(Case.transaction_reference == reference, Case.state != "closed").with_for_update()
             .execution_options(populate_existing=True))
    return db.scalars(query).first()


_CASE_BY_REFERENCE = select(Case).where(Case.reference == bindparam("reference"))
# a row read before the lock was granted is refreshed, never acted on stale
_CASE_BY_REFERENCE_LOCKED = _CASE_BY_REFERENCE.with_for_update().execution_options(populate_existing=True)
_CASE_BY_ID_LOCKED = (select(Case).where(Case.id == bindparam("case_id")).with_for_update()
                      .execution_options(populate_existing=True))


def case_by_reference(db: Session, reference: str, *, lock: bool = False) -> Case | None:
    return db.scalar(_CASE_BY_REFERENCE_LOCKED if lock else _CASE_BY_REFERENCE, {"reference": reference.lower()})


def case_by_id(db: Session, case_id: int, *, lock: bool = False) -> Case | None:
    if lock:
        return db.scalar(_CASE_BY_ID_LOCKED, {"case_id": case_id})
    # unlocked: a case this unit of work already holds is returned as it is (a SELECT would
    # return the same object, unrefreshed); only one it has not read yet is fetched
    return db.get(Case, case_id)


def merchant(db: Session, merchant_id: str, *, lock: bool = False) -> Merchant | None:
    if lock:
        return db.scalar(select(Merchant).where(Merchant.merchant_id == merchant_id).with_for_update()
                         .execution_options(populate_existing=True))
    # by primary key: a merchant this unit of work holds comes from the identity map with its
    # changes; no pending change of another row can alter which row this is, so none is
    # flushed for it (merchants and transactions are created by imports only)
    with db.no_autoflush:
        return db.get(Merchant, merchant_id)


def transaction(db: Session, reference: str) -> Transaction | None:
    with db.no_autoflush:  # as `merchant`
        return db.get(Transaction, reference)


_MERCHANT_AND_TRANSACTION = (select(Merchant, Transaction)
                              .outerjoin(Transaction, Transaction.reference == bindparam("reference"))
                              .where(Merchant.merchant_id == bindparam("merchant_id")))


def merchant_and_transaction(db: Session, merchant_id: str, reference: str) -> tuple[Merchant | None, Transaction | None]:
    """`merchant` and `transaction` at once: one SELECT when the unit of work holds
    neither row yet, else what each gives (no pending change is flushed for them)."""
    with db.no_autoflush:
        if identity_key(Merchant, merchant_id) in db.identity_map or \
                identity_key(Transaction, reference) in db.identity_map:
            return db.get(Merchant, merchant_id), db.get(Transaction, reference)
        row = db.execute(_MERCHANT_AND_TRANSACTION, {"merchant_id": merchant_id, "reference": reference}).first()
        if row is None:  # no such merchant: the transaction alone
            return None, db.get(Transaction, reference)
        return row[0], row[1]


def party(db: Session, case: Case, role: str) -> Party:
    """The case's party row for `role`, created on first use. The case's rows are read
    together, once per unit of work (the case row is locked by whoever changes its parties,
    and a row is written to the database as it is created, so no pending change can hide
    one): a reply asks for two parties, twice each."""
    if case.id is None:
        db.flush()  # a case opened in this unit of work gets its id
    rows = _parties_of(db, case.id)
    row = rows.get(role)
    if row is None:
        row = rows[role] = _add_party(db, case.id, role)
    return row


_INSERT_PARTY = Party.__table__.insert().returning(Party.__table__.c.id)


def _add_party(db: Session, case_id: int, role: str) -> Party:
    """A new party row, in the database at once (as `add_message`)."""
    values = {"case_id": case_id, "role": role, "thread_refs": []}
    row = Party(id=db.connection().execute(_INSERT_PARTY, values).scalar_one(), **values)
    make_transient_to_detached(row)
    db.add(row)
    return row


_PARTIES_OF = select(Party).where(Party.case_id == bindparam("case_id"))


def _parties_of(db: Session, case_id: int) -> dict[str, Party]:
    """The party rows of a case by role, read at the first call of the unit of work."""
    known = db.info.setdefault("parties", {})
    rows = known.get(case_id)
    if rows is None:
        with db.no_autoflush:  # the unit's pending changes cannot change which rows these are
            rows = known[case_id] = {row.role: row for row in db.scalars(_PARTIES_OF, {"case_id": case_id})}
    return rows


def remember_in_thread(row: Party, message_id: str | None, *, keep: int = 30) -> None:
    """Append a Message-ID to the party's thread (the first, its root, kept, and the newest `keep`)."""
    if not message_id or message_id in (row.thread_refs or []):
        return
    refs = list(row.thread_refs or [])
    refs.append(message_id)
    if len(refs) > keep:
        refs = [refs[0]] + refs[-(keep - 1):]
    row.thread_refs = refs


def add_event(
    db: Session,
    case: Case,
    kind: str,
    *,
    at: datetime,
    party: str | None = None,
    message: Message | None = None,
    **detail,
) -> Event:
    event = Event(case_id=case.id, at=at, kind=kind, party=party, message_id=message.id if message else None, detail=detail)
    db.add(event)
    return event


_MESSAGES = Message.__table__
_INSERT_MESSAGE = _MESSAGES.insert().returning(_MESSAGES.c.id)
_MESSAGE_DEFAULTS = {"inbound_id": None, "message_id": None, "subject": "", "new_text": "", "held": False,
                     "held_reason": None, "released_at": None, "sender": None, "staff_told_at": None}


def add_message(db: Session, case: Case, **fields) -> Message:
    """A message on the case, in the database at once: one Core INSERT ... RETURNING built
    once (no flush of the unit's other changes), then the row as a persistent object of the
    session, every column loaded, whose later changes the unit of work writes."""
    values = {**_MESSAGE_DEFAULTS, "case_id": case.id, **fields}
    message = Message(id=db.connection().execute(_INSERT_MESSAGE, values).scalar_one(), **values)
    make_transient_to_detached(message)
    db.add(message)
    return message


def sent_message_owner(db: Session, ids: Sequence[str]) -> tuple[int, str, bool] | None:
    """(case id, party, case closed?) of the newest outbox row whose Message-ID is in `ids`."""
    if not ids:
        return None
    query = (
        select(Outbox.case_id, Outbox.party, Case.state)
        .join(Case, Case.id == Outbox.case_id)
        .where(Outbox.message_id.in_(list(ids)[-50:]))
        .order_by(Outbox.id.desc())
        .limit(1)
    )
    row = db.execute(query).first()
    return (row[0], row[1], row[2] == "closed") if row else None


_OUTBOX = Outbox.__table__
_CLAIMED_COLUMNS = (_OUTBOX.c.verp_token, _OUTBOX.c.recipient, _OUTBOX.c.raw, _OUTBOX.c.attempts,
                    _OUTBOX.c.message_id, _OUTBOX.c.party, _OUTBOX.c.uncertain, _OUTBOX.c.last_error, _OUTBOX.c.kind)
_CLAIM_DUE = [_OUTBOX.c.id == bindparam("outbox_id"), _OUTBOX.c.status == "pending",
              _OUTBOX.c.next_attempt_at <= bindparam("now", type_=UtcDateTime())]
_CLAIM_VALUES = {"status": "sending", "attempts": _OUTBOX.c.attempts + 1, "holder": bindparam("holder"),
                 "lease_until": bindparam("lease_until", type_=UtcDateTime())}
_CLAIM_OUTBOX = update(_OUTBOX).where(*_CLAIM_DUE).values(_CLAIM_VALUES).returning(*_CLAIMED_COLUMNS)
_CLAIM_SMALL_OUTBOX = (update(_OUTBOX).where(*_CLAIM_DUE, func.length(_OUTBOX.c.raw) < bindparam("below_bytes"))
                       .values(_CLAIM_VALUES).returning(*_CLAIMED_COLUMNS))
_DUE_SIZE = select(func.length(_OUTBOX.c.raw)).where(*_CLAIM_DUE)
_SIZE = select(func.length(_OUTBOX.c.raw)).where(_OUTBOX.c.id == bindparam("outbox_id"))
_DELIVERY_STATES = (select(_OUTBOX.c.id, _OUTBOX.c.status, _OUTBOX.c.sent_at, _OUTBOX.c.message_id,
                           _OUTBOX.c.last_error)
                    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True))).with_for_update())
_RECORD_SENT = (update(_OUTBOX).where(_OUTBOX.c.id == bindparam("outbox_id"))
                .values(status="sent", sent_at=bindparam("at", type_=UtcDateTime()), smtp_code=250,
                        smtp_reply=bindparam("reply"), last_error=None, holder=None, uncertain=False))
_RECORD_SENT_IF_SENDING = _RECORD_SENT.where(_OUTBOX.c.status == "sending").returning(_OUTBOX.c.id)


class TooLarge(Exception):
    """The row is due but at least the size given to `claim_outbox`: it goes to the large queue."""


def claim_outbox(connection: Connection, outbox_id: int, *, now: datetime, lease_seconds: int, holder: str,
                 below_bytes: int | None = None):
    """Mark a pending outbox row that is due 'sending' by `holder`, in one statement; the
    claimed row (verp_token, recipient, raw, attempts, message_id, party, uncertain,
    last_error, kind), or None when it is not due or not pending (another attempt has it).
    With `below_bytes`, a row of that size or more is left alone and TooLarge raised."""
    parameters = {"outbox_id": outbox_id, "now": now, "holder": holder,
                  "lease_until": now + timedelta(seconds=lease_seconds)}
    if below_bytes is None:
        return connection.execute(_CLAIM_OUTBOX, parameters).first()
    row = connection.execute(_CLAIM_SMALL_OUTBOX, {**parameters, "below_bytes": below_bytes}).first()
    if row is None and (connection.scalar(_DUE_SIZE, {"outbox_id": outbox_id, "now": now}) or 0) >= below_bytes:
        raise TooLarge(outbox_id)
    return row


def outbox_size(connection: Connection, outbox_id: int) -> int:
    """The size of an outbox row's message in bytes (0 when it is gone)."""
    return connection.scalar(_SIZE, {"outbox_id": outbox_id}) or 0


def delivery_states(connection: Connection, outbox_ids: Sequence[int]):
    """(id, status, sent_at, message_id, last_error) of each row, locked, for recording 250s."""
    return connection.execute(_DELIVERY_STATES, {"ids": list(outbox_ids)}).all()


def record_sent(connection: Connection, accepted: Sequence[dict]) -> None:
    """Mark rows sent: each of `accepted` is {"outbox_id", "at", "reply"} (the smarthost's
    answer, the proof of hand-over for the export's delivery ledger)."""
    if accepted:
        connection.execute(_RECORD_SENT, list(accepted))


def record_sent_if_sending(connection: Connection, accepted: dict) -> bool:
    """Mark one row sent, as `record_sent` does, if it is still 'sending' (nearly always:
    nothing else happened to it since the claim); False when it is not."""
    return connection.execute(_RECORD_SENT_IF_SENDING, accepted).first() is not None


def renew_claims(db: Session, holder: str, outbox_ids: Sequence[int], *, now: datetime, lease_seconds: int) -> None:
    """The heartbeat of a live sender: the rows it is sending keep their claim."""
    if outbox_ids:
        db.execute(update(Outbox).where(Outbox.id.in_(list(outbox_ids)), Outbox.holder == holder,
                                        Outbox.status == "sending")
                   .values(lease_until=now + timedelta(seconds=lease_seconds)))


def claim_ids(db: Session, model, *conditions, order_by, values: dict, limit: int = 500) -> list[int]:
    """Ids of `model` rows matching `conditions`, updated with `values` in the same
    transaction. On PostgreSQL the rows are locked with SKIP LOCKED, so several schedulers
    claim disjoint rows; SQLite serialises writers anyway."""
    query = select(model.id).where(*conditions).order_by(order_by).limit(limit)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(db.scalars(query))
    if ids:
        db.execute(update(model).where(model.id.in_(ids)).values(**values))
    return ids


def claim_due_cases(db: Session, *, now: datetime, lease_seconds: int, limit: int = 500,
                    after_id: int | None = None) -> list[int]:
    """Ids of cases whose next timer is due (through the `next_due_at` index), claimed for
    `lease_seconds` (SKIP LOCKED on PostgreSQL), most overdue first; with `after_id`, only
    cases of a higher id, in id order (one pass over every due case, each claimed once)."""
    due = [Case.next_due_at.is_not(None), Case.next_due_at <= now]
    if after_id is not None:
        # the due cases first, through the index, then those after `after_id`: offered
        # `id > after_id` and the id order, SQLite walks the primary key through every
        # case from `after_id` on (1,000,000 idle ones too)
        due = [Case.id.in_(select(Case.id).where(*due)), Case.id > after_id]
    return claim_ids(db, Case, *due, or_(Case.timer_lease_until.is_(None), Case.timer_lease_until <= now),
                     order_by=Case.id if after_id is not None else Case.next_due_at, limit=limit,
                     values={"timer_lease_until": now + timedelta(seconds=lease_seconds)})


def stuck_inbound_ids(db: Session, *, now: datetime, lease_seconds: int, limit: int = 500) -> list[int]:
    """Queued inbound rows whose lease ran out; their lease is renewed before re-enqueueing."""
    return claim_ids(db, Inbound, Inbound.status == "queued",
                     or_(Inbound.lease_until.is_(None), Inbound.lease_until <= now),
                     order_by=Inbound.id, values={"lease_until": now + timedelta(seconds=lease_seconds)}, limit=limit)


def stuck_outbox_ids(db: Session, *, now: datetime, lease_seconds: int, limit: int = 500) -> list[int]:
    """Pending outbox rows due whose lease ran out (their job was lost with a broker that
    cannot be asked, such as the in-memory one): re-enqueued with a renewed lease."""
    return claim_ids(db, Outbox, Outbox.status == "pending", Outbox.next_attempt_at <= now,
                     or_(Outbox.lease_until.is_(None), Outbox.lease_until <= now), order_by=Outbox.id,
                     values={"lease_until": now + timedelta(seconds=lease_seconds)}, limit=limit)


def _uncertain_values(retry_at: datetime, lease_seconds: int, why: str) -> dict:
    return {"status": "pending", "holder": None, "uncertain": True, "next_attempt_at": retry_at,
            "lease_until": retry_at + timedelta(seconds=lease_seconds), "last_error": why}


def abandoned_outbox_ids(db: Session, *, now: datetime, lease_seconds: int, retry_at: datetime,
                         limit: int = 500) -> list[tuple[int, str | None]]:
    """(id, holder) of rows left 'sending' by a process that stopped renewing its claim for
    a whole lease. It may have been stopped after the smarthost took the message: each
    goes back to 'pending' for one retry at `retry_at`, marked uncertain."""
    query = (select(Outbox.id, Outbox.holder).where(Outbox.status == "sending", Outbox.lease_until <= now)
             .order_by(Outbox.id).limit(limit))
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = [(row[0], row[1]) for row in db.execute(query)]
    if rows:
        db.execute(update(Outbox).where(Outbox.id.in_([r[0] for r in rows])).values(
            **_uncertain_values(retry_at, lease_seconds, "its sender stopped during the delivery (outcome unknown)")))
    return rows


def release_claims_of(db: Session, holder: str, *, retry_at: datetime, lease_seconds: int) -> list[int]:
    """The rows a process that is known to have stopped (its journal's lock is free) was
    sending: back to 'pending' for one retry at `retry_at`, marked uncertain."""
    ids = list(db.scalars(select(Outbox.id).where(Outbox.holder == holder, Outbox.status == "sending")
                          .order_by(Outbox.id).with_for_update()))
    if ids:
        db.execute(update(Outbox).where(Outbox.id.in_(ids)).values(
            **_uncertain_values(retry_at, lease_seconds, "its sender stopped during the delivery (outcome unknown)")))
    return ids


def waiting_inbound_ids(db: Session, *, received_before: datetime, started_before: datetime,
                        limit: int = 5000) -> list[int]:
    """Queued inbound rows received before `received_before` and not in an attempt begun
    since `started_before` (candidates for a lost job)."""
    return list(db.scalars(select(Inbound.id).where(
        Inbound.status == "queued", Inbound.received_at <= received_before,
        or_(Inbound.started_at.is_(None), Inbound.started_at <= started_before)).order_by(Inbound.id).limit(limit)))


def release_attempts_of(db: Session, holder: str, *, now: datetime) -> list[int]:
    """The processing attempts of a process known to have stopped: still counted, but over,
    so the next attempt need not wait for the time limit to pass."""
    rows = list(db.scalars(select(Inbound).where(Inbound.holder == holder, Inbound.status == "queued",
                                                 Inbound.started_at.is_not(None)).with_for_update()))
    for row in rows:
        row.error = f"attempt {row.attempts} did not finish: its worker {holder} stopped"
        row.started_at = None
        row.lease_until = now
    return [row.id for row in rows]


def waiting_outbox_ids(db: Session, *, due_before: datetime, limit: int = 5000) -> list[int]:
    """Pending outbox rows due before `due_before` (candidates for a lost job)."""
    return list(db.scalars(select(Outbox.id).where(Outbox.status == "pending", Outbox.next_attempt_at <= due_before)
                           .order_by(Outbox.id).limit(limit)))


def claimed_timer_case_ids(db: Session, *, now: datetime, claimed_before: datetime, lease_seconds: int,
                           limit: int = 5000) -> list[int]:
    """Cases whose due timers were claimed before `claimed_before` and not run yet."""
    return list(db.scalars(select(Case.id).where(
        Case.next_due_at <= now, Case.timer_lease_until > now,
        Case.timer_lease_until <= claimed_before + timedelta(seconds=lease_seconds)).order_by(Case.id).limit(limit)))


def renew_leases(db: Session, model, ids: Sequence[int], *, lease_column: str, until: datetime) -> None:
    """Give rows whose job is enqueued again a fresh lease (so the lease rule leaves them be)."""
    if ids:
        db.execute(update(model).where(model.id.in_(list(ids))).values({lease_column: until}))


def instance_id(db: Session, *, now: datetime) -> str:
    """This installation's id (created once)."""
    found = db.scalar(select(Instance.id).limit(1))
    if found is None:
        found = uuid.uuid4().hex
        db.add(Instance(id=found, created_at=now))
        db.flush()
    return found


def timers_fingerprint(db: Session) -> str | None:
    """What the open cases' due times were last computed with (None: never recorded)."""
    return db.scalar(select(Instance.timers_fingerprint).limit(1))


def record_timers_fingerprint(db: Session, fingerprint: str, *, now: datetime) -> None:
    instance_id(db, now=now)
    db.execute(update(Instance).values(timers_fingerprint=fingerprint))


def beat(db: Session, process_id: str, *, role: str, hostname: str, pid: int, queues: Sequence[str],
         started_at: datetime, now: datetime, broker_id: str | None = None) -> None:
    """Record that process `process_id` is alive now."""
    row = db.get(ProcessHeartbeat, process_id)
    if row is None:
        db.add(ProcessHeartbeat(id=process_id, role=role, hostname=hostname, pid=pid, queues=list(queues),
                                broker_id=broker_id, started_at=started_at, beat_at=now))
    else:
        row.beat_at = now
        row.stopped_at = None
        row.stop_reason = None


def mark_stopped(db: Session, process_id: str, *, now: datetime, reason: str) -> str | None:
    """Record that a process stopped; returns its broker consumer id (None if unknown)."""
    row = db.get(ProcessHeartbeat, process_id)
    if row is not None and row.stopped_at is None:
        row.stopped_at = now
        row.stop_reason = reason
    return row.broker_id if row is not None else None


def forget_processes(db: Session, *, before: datetime) -> None:
    """Heartbeat rows of processes silent since `before` (a day): nobody needs them."""
    db.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.beat_at < before))


def forget_idempotency_keys(db: Session, *, before: datetime) -> int:
    """Answers kept for HTTP calls made before `before` ([http] idempotency_hours): a retry
    that late is a new call."""
    return db.execute(delete(ApiIdempotency).where(ApiIdempotency.created_at < before)).rowcount or 0


def lock_name(db: Session, name: str) -> None:
    """Hold a lock on `name` until the transaction ends (PostgreSQL advisory lock; SQLite has
    one writer at a time already)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": name})


def sends_to(db: Session, recipient: str, *, now: datetime, excluding: str) -> tuple[int, int]:
    """(in the last day, in the last hour): the send_log rows of `recipient`, but those of kind `excluding`."""
    last_hour = SendLog.at > now - timedelta(hours=1)
    day, hour = db.execute(
        select(func.count(), func.coalesce(func.sum(sql_case((last_hour, 1), else_=0)), 0))
        .where(SendLog.recipient == recipient, SendLog.kind != excluding,
               SendLog.at > now - timedelta(days=1))).one()
    return day, hour


def logged_since(db: Session, recipient: str, kind: str, *, since: datetime) -> bool:
    """Whether a send_log row of `kind` for `recipient` is newer than `since`."""
    return db.scalar(select(SendLog.id).where(SendLog.recipient == recipient, SendLog.kind == kind,
                                              SendLog.at > since).limit(1)) is not None


def kept_for_staff():
    """The inbound rows `quarantine list` shows: quarantined, or unplaced (a condition)."""
    return (Inbound.status == "quarantined") | Inbound.outcome.in_(sorted(d.value for d in UNPLACED))
