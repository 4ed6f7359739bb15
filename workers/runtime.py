"""The process's runtime: settings, database, renderer, clock, relay and broker, built once
and handed to the actors, the scheduler and the CLI."""

from __future__ import annotations

import logging
from datetime import datetime

import dramatiq

from gateway.authentication import DnsResolver, Resolver
from gateway.clock import Clock, SystemClock
from gateway.config import OutboundSettings, Settings
from gateway.db import Database
from gateway.mail.dkim import DkimSigner
from gateway.mail.templating import Renderer
from gateway.relay import MaildirRelay, Relay, SmtpRelay
from workers.broker import build_broker
from workers.large_messages import LargeMessageGate

log = logging.getLogger(__name__)


def build_relay(outbound: OutboundSettings) -> Relay:
    signer = DkimSigner.from_settings(outbound.dkim)  # None: the gateway does not sign
    sign = signer.sign if signer else None
    if outbound.smtp is not None:
        return SmtpRelay(outbound.smtp, sign=sign)
    return MaildirRelay(outbound.maildir, sign=sign)


class Runtime:
    """Everything an actor needs. `inline=True` runs jobs at once in the calling thread
    (a one-shot CLI command on the in-memory broker, where no worker would see them)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        relay: Relay | None = None,
        broker: dramatiq.Broker | None = None,
        broker_namespace: str = "dispute-gateway",
        inline: bool = False,
        resolver: Resolver | None = None,
    ) -> None:
        from workers import inbound, relay as relay_actors, timers

        self.settings = settings
        self.database = Database(settings.database.url)
        self.renderer = Renderer(settings.gateway.templates_dir, settings.timers.timezone)
        self._clock = clock or SystemClock()
        self.relay = relay or build_relay(settings.outbound)
        hygiene = settings.hygiene
        # DNS for the gateway's own authentication checks, when they are on ([hygiene] check_dkim/check_spf)
        self.resolver = resolver or (DnsResolver(hygiene.dns_timeout_seconds, hygiene.dns_servers)
                                     if hygiene.check_dkim or hygiene.check_spf else None)
        self.broker = broker or build_broker(settings.broker, namespace=broker_namespace)
        self.inline = inline
        self.large_messages = LargeMessageGate(settings.workers.large_messages_at_once,
                                               settings.workers.large_message_bytes)
        self.process_inbound = inbound.declare(self)
        self.deliver = relay_actors.declare(self)
        self.run_timer = timers.declare(self)

    @property
    def clock(self) -> Clock:
        """The process's one clock, read by every component it wires (ingress, workers,
        scheduler, commands). It cannot be swapped after start: a component that kept the
        old one would live at another time. A test moves the clock it passed in instead."""
        return self._clock

    def now(self) -> datetime:
        return self._clock.now()

    def enqueue_inbound(self, inbound_id: int, *, delay_ms: int | None = None) -> None:
        if self.inline:
            if delay_ms is None:
                self.process_inbound.fn(inbound_id)
            return  # a delayed retry in a one-shot command is left to the running gateway's sweep
        elif delay_ms:
            self.process_inbound.send_with_options(args=(inbound_id,), delay=delay_ms)
        else:
            self.process_inbound.send(inbound_id)

    def enqueue_delivery(self, outbox_id: int, *, delay_ms: int | None = None) -> None:
        if self.inline:
            if delay_ms is None:
                self.deliver.fn(outbox_id)
            return  # a delayed retry in a one-shot command is left to the running gateway's sweep
        if delay_ms:
            self.deliver.send_with_options(args=(outbox_id,), delay=delay_ms)
        else:
            self.deliver.send(outbox_id)

    def enqueue_timer(self, case_id: int) -> None:
        if self.inline:
            self.run_timer.fn(case_id)
        else:
            self.run_timer.send(case_id)

    def start_worker(self, threads: int | None = None) -> dramatiq.Worker:
        worker = dramatiq.Worker(self.broker, worker_threads=threads or self.settings.workers.threads,
                                 worker_timeout=100)
        worker.start()
        return worker

    def close(self) -> None:
        self.database.dispose()
        try:
            self.broker.close()
        except Exception:  # closing a broker twice or after a lost connection is harmless
            log.debug("broker close failed", exc_info=True)
