"""One delivery attempt of one outbox row: claim it, send it, record what happened.

Claim and record are two short units of work; only the send in between touches the
network. 4xx and connection errors go back to 'pending' with an exponential backoff;
a 5xx marks the row 'failed' and is handled exactly like a hard bounce.

A smarthost's 250 is never forgotten: it is written to the process's sent journal
(fsync'd) before the database is told, and when the database cannot be told now, the
process's heartbeat records it as soon as it can (a crash leaves the journal for the next
process of the host to record). An attempt whose outcome is unknown (the connection was lost
after the message was sent, or a sender stopped mid-delivery) is retried once, after
`[outbound] uncertain_retry_seconds`, with the same Message-ID, and logged.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterator


from gateway import addresses, store
from gateway.config import Settings
from gateway.db import Database, DatabaseUnavailable
from gateway.metrics import RESENDS
from gateway.models import Outbox
from gateway.transport import PermanentFailure, TemporaryFailure, Transport, UncertainDelivery
from gateway.sent_journal import Accepted, SentJournal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    outbox_id: int
    result: str  # sent | retry | failed | skipped
    detail: str = ""
    retry_at: datetime | None = None


class Sender:
    """The sending side of one process: the id its claims carry, its sent journal, and the
    rows it is sending now (its heartbeat renews their claims)."""

    def __init__(self, holder: str, journal: SentJournal) -> None:
        self.holder = holder
        self.journal = journal
        self._lock = threading.Lock()
        self._sending: set[int] = set()

    @contextmanager
    def sending(self, outbox_id: int) -> Iterator[None]:
        with self._lock:
            self._sending.add(outbox_id)
        try:
            yield
        finally:
            with self._lock:
                self._sending.discard(outbox_id)

    def in_flight(self) -> list[int]:
        with self._lock:
            return sorted(self._sending)


def backoff(attempts: int, *, base: int, ceiling: int) -> timedelta:
    """Delay before the next try after `attempts` failed ones: base * 2^(n-1), capped."""
    return timedelta(seconds=min(ceiling, base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Claimed:
    """A row claimed for one attempt: what to send, and what the last attempt left."""

    outbox_id: int
    holder: str
    mail_from: str
    recipient: str
    raw: bytes
    attempts: int
    message_id: str
    party: str | None
    resend: bool  # the last attempt's outcome is unknown
    previous: str | None
    kind: str = ""


@dataclass(frozen=True)
class Route:
    """How a claimed row of some kind is sent, and what a permanent refusal of it sets off."""

    transport: Transport
    on_permanent_failure: Callable[..., list[int]] | None = None


def deliver(
    database: Database,
    outbox_id: int,
    *,
    route: Callable[[str], Route],
    settings: Settings,
    clock: Callable[[], datetime],
    sender: Sender,
    below_bytes: int | None = None,
) -> tuple[Attempt, list[int]]:
    """Attempt one outbox row, sent the way `route` gives for its kind; returns the attempt
    and any new outbox ids it caused. With `below_bytes`, a row of that size or more is not
    claimed: the attempt's result is "large" (it belongs on the large-message queue)."""
    with sender.sending(outbox_id):
        try:
            claimed = _claim(database, outbox_id, settings, clock, sender.holder, below_bytes)
        except store.TooLarge:
            return Attempt(outbox_id, "large", f"at least {below_bytes} bytes"), []
        if claimed is None:
            return Attempt(outbox_id, "skipped", "not due or already handled"), []
        if claimed.resend:
            RESENDS.inc()
            log.warning("outbox %s: sending again to party %s with the same Message-ID %s (attempt %s); the "
                        "previous attempt's outcome is unknown: %s", outbox_id, claimed.party, claimed.message_id,
                        claimed.attempts, claimed.previous)
        how = route(claimed.kind)
        try:
            detail = how.transport.send(claimed.mail_from, claimed.recipient, claimed.raw)
        except Exception as error:  # refused, unknown, or a fault of the transport
            return _not_accepted(database, claimed, error, settings, clock, how.on_permanent_failure)
        return _accepted(database, claimed, detail, sender, clock), []


def _claim(database: Database, outbox_id: int, settings: Settings, clock, holder: str,
           below_bytes: int | None) -> Claimed | None:
    gateway = settings.gateway
    with database.connection() as connection:
        row = store.claim_outbox(connection, outbox_id, now=clock(), lease_seconds=settings.workers.lease_seconds,
                                 holder=holder, below_bytes=below_bytes)
    if row is None:
        return None
    return Claimed(outbox_id, holder,
                   addresses.bounce_address(row.verp_token, domain=gateway.domain, keys=gateway.secret_keys),
                   row.recipient, row.raw, row.attempts, row.message_id, row.party, row.uncertain, row.last_error,
                   row.kind)


def _accepted(database: Database, claimed: Claimed, detail: str, sender: Sender, clock) -> Attempt:
    outbox_id = claimed.outbox_id
    accepted = Accepted(outbox_id, clock(), claimed.message_id, detail)
    sender.journal.record(accepted)  # from here on, a crash or an outage cannot make us send it again
    try:
        record_accepted(database, [accepted], journal=sender.journal)
    except DatabaseUnavailable as error:
        log.warning("outbox %s: accepted by the smarthost (%s); the database is unavailable (%s): kept in the "
                    "sent journal %s and recorded as soon as the database answers", outbox_id, detail, error,
                    sender.journal.path)
        return Attempt(outbox_id, "sent", f"{detail} (recorded from the journal later)")
    log.info("outbox %s sent to party %s: %s", outbox_id, claimed.party, detail)
    return Attempt(outbox_id, "sent", detail)


def _not_accepted(database: Database, claimed: Claimed, error: Exception, settings: Settings, clock,
                  on_permanent_failure) -> tuple[Attempt, list[int]]:
    outbox_id, holder, attempts = claimed.outbox_id, claimed.holder, claimed.attempts
    if isinstance(error, UncertainDelivery):
        # Not put back at once if this cannot be recorded: the row stays 'sending', its claim
        # runs out, and the sweep gives it the same one delayed retry.
        return _record_uncertain(database, outbox_id, holder, str(error), attempts, claimed.resend,
                                 claimed.message_id, settings, clock), []
    with _released_on_error(database, outbox_id, holder, clock):
        if isinstance(error, TemporaryFailure):
            # A recipient's temporary refusal that lasts is a hard bounce.
            # The smarthost or the network being down is not the recipient's fault: that is
            # retried for as long as it takes, and the health check reports the stuck outbox.
            give_up = _give_up_reason(database, outbox_id, attempts, settings, clock) if error.recipient_level else None
            if give_up:
                return _record_failure(database, outbox_id, holder, f"{error} ({give_up})", error.code, clock,
                                       on_permanent_failure)
            return _record_retry(database, outbox_id, holder, str(error), error.code, attempts, settings, clock), []
        if isinstance(error, PermanentFailure):
            return _record_failure(database, outbox_id, holder, str(error), error.code, clock, on_permanent_failure)
        # a transport fault (disk full, bug): never leave the row 'sending'
        log.error("outbox %s: unexpected error while sending", outbox_id, exc_info=error)
        text = f"{type(error).__name__}: {error}"
        if attempts >= settings.outbound.max_attempts:
            return _record_failure(database, outbox_id, holder, f"{text} (gave up after {attempts} attempts)", None,
                                   clock, None)
        return _record_retry(database, outbox_id, holder, text, None, attempts, settings, clock), []


def record_accepted(database: Database, entries: list[Accepted], *, journal: SentJournal | None = None) -> list[int]:
    """Record the smarthost's 250s in one transaction; returns the ids recorded. A row
    recorded 'sent' before by another attempt means the smarthost got it twice: logged."""
    if not entries:
        return []
    with database.connection() as connection:
        # one 250 for a row still 'sending' (the attempt that just sent it): one statement
        if len(entries) > 1 or not store.record_sent_if_sending(connection, _sent_values(entries[0])):
            _record_checked(connection, entries)
    ids = [e.outbox_id for e in entries]
    if journal is not None:
        journal.mark_recorded(ids)
    return ids


def _sent_values(entry: Accepted) -> dict:
    # the smarthost's reply is the proof of hand-over, for the export's delivery ledger
    return {"outbox_id": entry.outbox_id, "at": entry.at, "reply": entry.reply[:1000] or None}


def _record_checked(connection, entries: list[Accepted]) -> None:
    """Record 250s after reading each row locked: one sent before by another attempt, or
    failed since, is logged and left as it is."""
    rows = {row.id: row for row in store.delivery_states(connection, [e.outbox_id for e in entries])}
    updates = []
    for entry in entries:
        row = rows.get(entry.outbox_id)
        if row is None:
            continue
        if row.status == "sent" and row.sent_at is not None and row.sent_at != entry.at:
            log.warning("outbox %s: the smarthost accepted it twice (Message-ID %s; at %s and at %s)",
                        row.id, row.message_id, row.sent_at.isoformat(), entry.at.isoformat())
            continue
        if row.status == "failed":
            log.warning("outbox %s: a later attempt failed (%s), but an earlier one had been accepted by the "
                        "smarthost at %s (Message-ID %s): left as failed", row.id, row.last_error,
                        entry.at.isoformat(), row.message_id)
            continue
        updates.append(_sent_values(entry))
    store.record_sent(connection, updates)


def _held(db, outbox_id: int, holder: str) -> Outbox | None:
    """The row if this attempt still holds it. The sweep may have taken it back (the claim
    ran out while the database was down) and another attempt recorded it since: an outcome
    of ours must then not overwrite theirs."""
    row = db.get(Outbox, outbox_id, with_for_update=True)
    if row is None or row.status != "sending" or row.holder != holder:
        log.warning("outbox %s: no longer held by this attempt (now %s); its outcome is not recorded over the "
                    "newer one", outbox_id, row.status if row else "gone")
        return None
    return row


@contextmanager
def _released_on_error(database: Database, outbox_id: int, holder: str, clock):
    """If recording a refused delivery fails (a deadlock, the database gone), put the row
    back to 'pending' so the actor's retry can try again at once: nothing was delivered."""
    try:
        yield
    except Exception:
        try:
            with database.unit_of_work() as db:
                row = db.get(Outbox, outbox_id)
                if row is not None and row.status == "sending" and row.holder == holder:
                    row.status = "pending"
                    row.holder = None
                    row.next_attempt_at = clock()
        except Exception:  # the sweep puts it back after its lease
            log.warning("outbox %s: could not put the row back to pending; the sweep will once its claim "
                        "runs out", outbox_id)
        raise


def _give_up_reason(database: Database, outbox_id: int, attempts: int, settings: Settings, clock) -> str | None:
    """Why retrying stops: the failure has lasted `soft_bounce_hard_after_hours`, or
    `max_attempts` were made. None: retry."""
    with database.unit_of_work() as db:
        first = db.get(Outbox, outbox_id).first_failure_at
    hours = settings.hygiene.soft_bounce_hard_after_hours
    if first is not None and clock() - first >= timedelta(hours=hours):
        return f"still failing after {hours} hours"
    if attempts >= settings.outbound.max_attempts:
        return f"gave up after {attempts} attempts"
    return None


def _record_retry(database: Database, outbox_id: int, holder: str, error: str, code: int | None, attempts: int,
                  settings: Settings, clock, *, delay: timedelta | None = None, uncertain: bool = False) -> Attempt:
    now = clock()
    with database.unit_of_work() as db:
        row = _held(db, outbox_id, holder)
        if row is None:
            return Attempt(outbox_id, "skipped", "taken back meanwhile")
        row.last_error = error[:2000]
        row.smtp_code = code
        row.first_failure_at = row.first_failure_at or now
        row.status = "pending"
        row.holder = None
        row.uncertain = uncertain
        row.next_attempt_at = now + (delay if delay is not None else backoff(
            attempts, base=settings.outbound.retry_base_seconds, ceiling=settings.outbound.retry_max_seconds))
        row.lease_until = row.next_attempt_at + timedelta(seconds=settings.workers.lease_seconds)
        retry_at = row.next_attempt_at
    if not uncertain:
        log.info("outbox %s temporary failure (attempt %s), retry at %s: %s", outbox_id, attempts, retry_at, error)
    return Attempt(outbox_id, "retry", error, retry_at)


def _record_uncertain(database: Database, outbox_id: int, holder: str, error: str, attempts: int, resent: bool,
                      message_id: str, settings: Settings, clock) -> Attempt:
    """The smarthost may have the message. Retried once after `uncertain_retry_seconds`
    (never at once: a smarthost that drops connections would get a copy per try); if that
    retry is also left unknown, the usual backoff applies."""
    delay = None if resent else timedelta(seconds=settings.outbound.uncertain_retry_seconds)
    attempt = _record_retry(database, outbox_id, holder, error, None, attempts, settings, clock, delay=delay,
                            uncertain=True)
    if attempt.retry_at is None:
        return attempt
    log.warning("outbox %s: outcome unknown (%s); the smarthost may have it: one retry at %s with the same "
                "Message-ID %s", outbox_id, error, attempt.retry_at.isoformat(), message_id)
    return attempt


def _record_failure(database: Database, outbox_id: int, holder: str, error: str, code: int | None, clock,
                    on_permanent_failure) -> tuple[Attempt, list[int]]:
    now = clock()
    new_ids: list[int] = []
    with database.unit_of_work() as db:
        row = _held(db, outbox_id, holder)
        if row is None:
            return Attempt(outbox_id, "skipped", "taken back meanwhile"), []
        row.status = "failed"
        row.holder = None
        row.uncertain = False
        row.last_error = error[:2000]
        row.smtp_code = code
        row.first_failure_at = row.first_failure_at or now
        if on_permanent_failure is not None:
            new_ids = on_permanent_failure(db, row, error=error, now=now)
    log.warning("outbox %s permanent failure: %s", outbox_id, error)
    return Attempt(outbox_id, "failed", error), new_ids
