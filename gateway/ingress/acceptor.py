"""The one hand-off from a transport to the gateway, for SMTP and IMAP alike.

`accept` commits the raw message with its envelope (a duplicate, recognised by
`store.save_inbound`, returns the first copy's id and is not processed again), then
enqueues its processing. An enqueue that fails is logged only: the row is committed and
the scheduler's sweep finds the lost job. Nothing is committed when `accept` raises, so
the transport can make the sender try again (SMTP answers 451, IMAP leaves the message in
its mailbox).

`too_large` records a message the transport refused to read because of its size (IMAP
leaves it in its mailbox; SMTP refuses it with 552 before it is received): its headers only,
quarantined, and staff are told when it was meant for one of our addresses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from gateway import addresses, quarantine, store
from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.mail.templating import Renderer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    inbound_id: int
    duplicate: bool


class Acceptor:
    """Stores what a transport received and hands it to the workers (`on_stored(inbound_id)`)."""

    def __init__(self, settings: Settings, database: Database, clock: Clock, on_stored: Callable[[int], None]) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock
        self.on_stored = on_stored

    def accept(self, raw: bytes, *, mail_from: str, rcpt_tos: list[str], source: str,
               client_address: str | None = None, client_helo: str | None = None) -> Accepted:
        """Commit, then enqueue. Raises (DatabaseUnavailable or anything else) when nothing was committed."""
        with self.database.unit_of_work() as db:
            inbound_id, duplicate = store.save_inbound(
                db, raw=raw, mail_from=mail_from, rcpt_tos=rcpt_tos, source=source, now=self.clock.now(),
                lease_seconds=self.settings.workers.lease_seconds, client_address=client_address,
                client_helo=client_helo)
        if duplicate:
            log.info("inbound %s: duplicate delivery from %s recognised, not processed again", inbound_id, source)
            return Accepted(inbound_id, True)
        try:
            self.on_stored(inbound_id)
        except Exception:  # the row is committed; the sweep enqueues it again
            log.exception("inbound %s stored but could not be enqueued; the sweep will pick it up", inbound_id)
        return Accepted(inbound_id, False)

    def too_large(self, header: bytes, *, mail_from: str, rcpt_tos: list[str], source: str, size: int, where: str,
                  renderer: Renderer, enqueue_delivery: Callable[[int], None]) -> None:
        """Record a message too large to read (its `header` only) as quarantined, once; staff
        are told when it was addressed to one of our addresses (someone waits for an answer).
        Mail for nobody of ours (a catch-all mailbox) is only listed, or every large spam would
        reach staff."""
        settings = self.settings
        ours = [r for r in addresses.recipients_of(settings.gateway, rcpt_tos)
                if not isinstance(r, addresses.Rejected)]
        with self.database.unit_of_work() as db:
            now = self.clock.now()
            inbound_id, duplicate = store.save_inbound(db, raw=header, mail_from=mail_from, rcpt_tos=rcpt_tos,
                                                       source=source, now=now,
                                                       lease_seconds=settings.workers.lease_seconds)
            if duplicate:
                return
            outbox_ids = quarantine.too_large(db, inbound_id, settings=settings, renderer=renderer, now=now,
                                              size=size, where=where, tell_staff=bool(ours))
        for outbox_id in outbox_ids:
            enqueue_delivery(outbox_id)
