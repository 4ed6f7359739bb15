"""One delivery attempt of one outbox row: claim it, send it, record what happened.

Claim and record are two short units of work; only the send in between touches the
network. 4xx and connection errors go back to 'pending' with an exponential backoff;
a 5xx marks the row 'failed' and is handled exactly like a hard bounce.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from gateway import addresses, store
from gateway.config import Settings
from gateway.db import Database
from gateway.models import Outbox
from gateway.relay import PermanentFailure, Relay, TemporaryFailure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    outbox_id: int
    result: str  # sent | retry | failed | skipped
    detail: str = ""
    retry_at: datetime | None = None


def backoff(attempts: int, *, base: int, ceiling: int) -> timedelta:
    """Delay before the next try after `attempts` failed ones: base * 2^(n-1), capped."""
    return timedelta(seconds=min(ceiling, base * 2 ** max(0, attempts - 1)))


def deliver(
    database: Database,
    outbox_id: int,
    *,
    relay: Relay,
    settings: Settings,
    clock: Callable[[], datetime],
    on_permanent_failure: Callable[..., list[int]] | None = None,
) -> tuple[Attempt, list[int]]:
    """Attempt one outbox row; returns the attempt and any new outbox ids it caused."""
    gateway = settings.gateway
    with database.unit_of_work() as db:
        row = store.claim_outbox(db, outbox_id, now=clock(), lease_seconds=settings.workers.lease_seconds)
        if row is None:
            return Attempt(outbox_id, "skipped", "not due or already handled"), []
        mail_from = addresses.bounce_address(row.verp_token, domain=gateway.domain, keys=gateway.secret_keys)
        recipient, raw, attempts = row.recipient, row.raw, row.attempts
    try:
        detail = relay.send(mail_from, recipient, raw)
    except TemporaryFailure as error:
        with _released_on_error(database, outbox_id, clock):
            # A recipient's temporary refusal that lasts is a hard bounce (DOMAIN.md section 8).
            # The smarthost or the network being down is not the recipient's fault: that is
            # retried for as long as it takes, and the health check reports the stuck outbox.
            give_up = _give_up_reason(database, outbox_id, attempts, settings, clock) if error.recipient_level else None
            if give_up:
                return _record_failure(database, outbox_id, f"{error} ({give_up})", error.code, clock,
                                       on_permanent_failure)
            return _record_retry(database, outbox_id, str(error), error.code, attempts, settings, clock), []
    except PermanentFailure as error:
        with _released_on_error(database, outbox_id, clock):
            return _record_failure(database, outbox_id, str(error), error.code, clock, on_permanent_failure)
    except Exception as error:  # a transport fault (disk full, bug): never leave the row 'sending'
        log.exception("outbox %s: unexpected error while sending", outbox_id)
        with _released_on_error(database, outbox_id, clock):
            if attempts >= settings.outbound.max_attempts:
                return _record_failure(database, outbox_id, f"{type(error).__name__}: {error} (gave up after "
                                       f"{attempts} attempts)", None, clock, None)
            return _record_retry(database, outbox_id, f"{type(error).__name__}: {error}", None, attempts, settings,
                                 clock), []
    with database.unit_of_work() as db:
        row = db.get(Outbox, outbox_id)
        row.status = "sent"
        row.sent_at = clock()
        row.last_error = None
        row.smtp_code = 250
        row.smtp_reply = detail[:1000]  # the proof of hand-over, for the export's delivery ledger
    log.info("outbox %s sent to party %s: %s", outbox_id, row.party, detail)
    return Attempt(outbox_id, "sent", detail), []


@contextmanager
def _released_on_error(database: Database, outbox_id: int, clock):
    """If recording a refused delivery fails (a deadlock, the database gone), put the row
    back to 'pending' so the actor's retry can try again at once: nothing was delivered."""
    try:
        yield
    except Exception:
        try:
            with database.unit_of_work() as db:
                row = db.get(Outbox, outbox_id)
                if row is not None and row.status == "sending":
                    row.status = "pending"
                    row.next_attempt_at = clock()
        except Exception:  # the sweep puts it back after its lease
            log.exception("outbox %s: could not put the row back to pending", outbox_id)
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


def _record_retry(database: Database, outbox_id: int, error: str, code: int | None, attempts: int,
                  settings: Settings, clock) -> Attempt:
    now = clock()
    with database.unit_of_work() as db:
        row = db.get(Outbox, outbox_id)
        row.last_error = error[:2000]
        row.smtp_code = code
        row.first_failure_at = row.first_failure_at or now
        row.status = "pending"
        row.next_attempt_at = now + backoff(attempts, base=settings.outbound.retry_base_seconds,
                                            ceiling=settings.outbound.retry_max_seconds)
        row.lease_until = row.next_attempt_at + timedelta(seconds=settings.workers.lease_seconds)
        retry_at = row.next_attempt_at
    log.info("outbox %s temporary failure (attempt %s), retry at %s: %s", outbox_id, attempts, retry_at, error)
    return Attempt(outbox_id, "retry", error, retry_at)


def _record_failure(database: Database, outbox_id: int, error: str, code: int | None, clock,
                    on_permanent_failure) -> tuple[Attempt, list[int]]:
    now = clock()
    new_ids: list[int] = []
    with database.unit_of_work() as db:
        row = db.get(Outbox, outbox_id)
        row.status = "failed"
        row.last_error = error[:2000]
        row.smtp_code = code
        row.first_failure_at = row.first_failure_at or now
        if on_permanent_failure is not None:
            new_ids = on_permanent_failure(db, row, error=error, now=now)
    log.warning("outbox %s permanent failure: %s", outbox_id, error)
    return Attempt(outbox_id, "failed", error), new_ids
