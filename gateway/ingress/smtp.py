"""SMTP ingress (aiosmtpd): verify recipients at RCPT, store raw bytes at DATA, answer.

RCPT: only the intake addresses, signed case addresses and signed VERP addresses of our
domain are accepted; anything else gets 550 while the client is connected, so the MTA
bounces it, not us (no backscatter). DATA: the raw bytes and envelope are committed
before 250; if the database cannot commit, 451 so the MTA retries. SIZE is advertised
and a larger message gets 552.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiosmtpd.controller import Controller

from gateway import addresses
from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database, DatabaseUnavailable
from gateway.ingress.acceptor import Acceptor
from gateway.metrics import DATABASE_OUTAGES, SMTP_ANSWERS
from gateway.outage import Outage

log = logging.getLogger(__name__)

SMTP_250_QUEUED = "250 2.0.0 Message accepted for delivery"
SMTP_250_DUPLICATE = "250 2.0.0 Message already received"
SMTP_250_RCPT = "250 2.1.5 Recipient ok"
SMTP_451_TRY_LATER = "451 4.3.0 Temporary storage failure, try again later"
SMTP_550_NO_SUCH_USER = "550 5.1.1 No such recipient here"
SMTP_550_NOT_OUR_DOMAIN = "550 5.7.1 Relaying denied: not a domain of this gateway"
SMTP_452_TOO_MANY = "452 4.5.3 Too many recipients"
SMTP_554_NO_RECIPIENTS = "554 5.5.1 No valid recipients"
MAX_RECIPIENTS = 50


class IngressHandler:
    """aiosmtpd handler; the shared acceptor commits each message and enqueues its
    processing (`on_stored(inbound_id)`) before the 250."""

    def __init__(self, settings: Settings, database: Database, clock: Clock, on_stored: Callable[[int], None]) -> None:
        self.settings = settings
        self.acceptor = Acceptor(settings, database, clock, on_stored)
        self.outage = Outage("database", on_start=DATABASE_OUTAGES.inc)

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        gateway = self.settings.gateway
        verdict = addresses.parse(address, domain=gateway.domain, keys=gateway.secret_keys,
                                  intake=tuple(gateway.intake_local_parts))
        if isinstance(verdict, addresses.Rejected):
            log.info("RCPT refused (%s) from %s", verdict.reason, session.peer)
            SMTP_ANSWERS.labels(f"rcpt_refused_{verdict.reason.replace(' ', '_')}").inc()
            return SMTP_550_NOT_OUR_DOMAIN if verdict.reason == "not our domain" else SMTP_550_NO_SUCH_USER
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return SMTP_452_TOO_MANY
        envelope.rcpt_tos.append(address)
        return SMTP_250_RCPT

    async def handle_DATA(self, server, session, envelope) -> str:
        if not envelope.rcpt_tos:
            return SMTP_554_NO_RECIPIENTS
        raw = envelope.original_content or envelope.content
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else None
        try:
            accepted = await asyncio.to_thread(
                self.acceptor.accept, raw, mail_from=envelope.mail_from or "", rcpt_tos=list(envelope.rcpt_tos),
                source="smtp", client_address=peer, client_helo=session.host_name)
        except DatabaseUnavailable as error:  # one log line per outage, however many messages get 451
            self.outage.failed(error, "storing received mail: answering 451, the MTA retries")
            SMTP_ANSWERS.labels("tempfail_database").inc()
            return SMTP_451_TRY_LATER
        except Exception:
            log.exception("storing a message failed, answered 451")
            SMTP_ANSWERS.labels("tempfail_error").inc()
            return SMTP_451_TRY_LATER
        self.outage.succeeded()
        if accepted.duplicate:
            SMTP_ANSWERS.labels("duplicate").inc()
            return SMTP_250_DUPLICATE
        SMTP_ANSWERS.labels("accepted").inc()
        return SMTP_250_QUEUED


def start(settings: Settings, database: Database, clock: Clock, on_stored: Callable[[int], None]) -> Controller:
    """Start the SMTP listener in its own thread; returns the running controller."""
    ingress = settings.smtp_ingress
    handler = IngressHandler(settings, database, clock, on_stored)
    controller = Controller(
        handler, hostname=ingress.host, port=ingress.port, server_hostname=ingress.hostname,
        data_size_limit=ingress.max_message_bytes, decode_data=False, ident="dispute-gateway", ready_timeout=10,
    )
    controller.start()
    log.info("SMTP ingress listening on %s:%s", ingress.host, ingress.port)
    return controller
