"""The process's runtime: settings, database, renderer, clock, transport and broker, built once
and handed to the actors, the scheduler and the CLI."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta

import dramatiq

from gateway import config as config_module
from gateway import delivery, sent_journal, sisimai, store, webhooks
from gateway.authentication import DnsResolver, Resolver
from gateway.clock import Clock, SystemClock
from gateway.config import OutboundSettings, Settings
from gateway.db import Database, DatabaseUnavailable
from gateway.delivery import Sender
from gateway.mail.dkim import DkimSigner
from gateway.mail.templating import Renderer
from gateway.metrics import DATABASE_OUTAGES
from gateway.outage import Outage, id_list
from gateway.transport import MaildirTransport, SmtpTransport, Transport
from gateway.sent_journal import SentJournal
from workers.broker import build_broker, declare_consumer_dead, ping
from workers.heartbeat import Heartbeat
from workers.large_messages import LargeMessageGate

log = logging.getLogger(__name__)
QUEUES = ("inbound", "outbound", "timers", "large")


def build_transport(outbound: OutboundSettings) -> Transport:
    signer = DkimSigner.from_settings(outbound.dkim)  # None: the gateway does not sign
    sign = signer.sign if signer else None
    if outbound.smtp is not None:
        return SmtpTransport(outbound.smtp, sign=sign)
    return MaildirTransport(outbound.maildir, sign=sign)


def new_process_id() -> str:
    """`<host>-<pid>-<random>`: names this process in claims, heartbeats and its journal file."""
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())[:60] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class Runtime:
    """Everything an actor needs. `inline=True` runs jobs at once in the calling thread
    (a one-shot CLI command on the in-memory broker, where no worker would see them)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
        broker: dramatiq.Broker | None = None,
        broker_namespace: str = "dispute-gateway",
        inline: bool = False,
        resolver: Resolver | None = None,
    ) -> None:
        from workers import inbound, deliveries, timers

        self.settings = settings
        self.database = Database(settings.database.url)
        self.renderer = Renderer(settings.gateway.templates_dir, settings.timers.timezone)
        self._clock = clock or SystemClock()
        self.transport = transport or build_transport(settings.outbound)
        hygiene = settings.hygiene
        # DNS for the gateway's own authentication checks, when they are on ([hygiene] check_dkim/check_spf)
        self.resolver = resolver or (DnsResolver(hygiene.dns_timeout_seconds, hygiene.dns_servers)
                                     if hygiene.check_dkim or hygiene.check_spf else None)
        # [bounces] analyser: Sisimai beside our own detectors, started on the first report
        self.analyser = sisimai.analyser_for(settings.bounces)
        self.broker = broker or build_broker(settings.broker, namespace=broker_namespace)
        self.inline = inline
        self.process_id = new_process_id()
        self.started_at = self.now()
        self.outage = Outage("database", on_start=DATABASE_OUTAGES.inc)
        self.broker_outage = Outage("broker")
        self.broker_memory: dict = {}  # what the sweep last saw of the broker (workers.broker.loss_reason)
        self.large_messages = LargeMessageGate(settings.workers.large_messages_at_once,
                                               settings.workers.large_message_bytes)
        self._sender: Sender | None = None
        self._sender_lock = threading.Lock()
        self._orphans_adopted = False
        self._to_enqueue: list = []
        self.process_inbound, self.process_large_inbound = inbound.declare(self)
        self.deliver, self.deliver_large = deliveries.declare(self)
        self.run_timer = timers.declare(self)
        # [[http.webhooks]]: case events become outbox rows of kind "webhook" (gateway/webhooks.py)
        self.webhook_sender = webhooks.WebhookSender(settings.http, clock=self.now)
        webhooks.install(self.database._sessions, settings, enqueue=None if inline else self.enqueue_delivery)

    @property
    def clock(self) -> Clock:
        """The process's one clock, read by every component it wires (ingress, workers,
        scheduler, commands). It cannot be swapped after start: a component that kept the
        old one would live at another time. A test moves the clock it passed in instead."""
        return self._clock

    def now(self) -> datetime:
        return self._clock.now()

    # --- the sending side: claims and the sent journal -------------------------------

    @property
    def current_sender(self) -> Sender | None:
        return self._sender

    def sender(self) -> Sender:
        """This process's Sender, its journal open; before the first one is handed out, the
        journals of this host's stopped processes are recorded (a restarted worker never
        sends before it has). Raises DatabaseUnavailable."""
        with self._sender_lock:
            if self._sender is None:
                with self.database.unit_of_work() as db:
                    instance = store.instance_id(db, now=self.now())
                journal = SentJournal(self.settings.outbound.journal_dir / instance, self.process_id)
                try:
                    journal.check_writable()
                except OSError as error:
                    raise config_module.ConfigError(
                        f"{self.settings.source}: [outbound] journal_dir: cannot keep the sent journal in "
                        f"{journal.folder}: {error.strerror or error}") from None
                self._sender = Sender(self.process_id, journal)
            if not self._orphans_adopted:
                self._adopt_orphans_locked()
                self._orphans_adopted = True
            sender = self._sender
        self._enqueue_after_adoption()
        return sender

    def adopt_orphan_journals(self) -> int:
        """Record the journals of this host's stopped processes; release what they were
        sending for one delayed retry. Returns the entries recorded."""
        with self._sender_lock:
            recorded = self._adopt_orphans_locked()
        self._enqueue_after_adoption()
        return recorded

    def _adopt_orphans_locked(self) -> int:
        journal = self._sender.journal if self._sender else None
        if journal is None:
            return 0
        return sent_journal.adopt_orphans(journal.folder, own=journal.path, record=self._record_orphan)

    def _record_orphan(self, owner: str, entries: list) -> None:
        delivery.record_accepted(self.database, entries)
        now = self.now()
        settings = self.settings
        retry_at = now + timedelta(seconds=settings.outbound.uncertain_retry_seconds)
        with self.database.unit_of_work() as db:
            consumer = store.mark_stopped(db, owner, now=now,
                                          reason=f"stopped without a clean shutdown; found by {self.process_id}")
            released = store.release_claims_of(db, owner, retry_at=retry_at, lease_seconds=settings.workers.lease_seconds)
            attempts = store.release_attempts_of(db, owner, now=now)
        if consumer:
            try:
                declare_consumer_dead(self.broker, consumer)
            except Exception as error:  # the broker down: Dramatiq's own maintenance does it later
                self.broker_outage.failed(error, "requeueing a stopped worker's messages")
        if entries or released:
            log.warning("process %s stopped: recorded %s deliveries the smarthost had accepted from its journal "
                        "(outbox %s); %s it was sending go back for one retry at %s (outbox %s)", owner, len(entries),
                        id_list(e.outbox_id for e in entries), len(released), retry_at.isoformat(), id_list(released))
        if attempts:
            log.warning("process %s stopped while processing inbound %s: taken up again now", owner,
                        id_list(attempts))
        delay_ms = settings.outbound.uncertain_retry_seconds * 1000
        self._to_enqueue += [lambda i=i: self.enqueue_delivery(i, delay_ms=delay_ms) for i in released]
        self._to_enqueue += [lambda i=i: self.enqueue_inbound(i) for i in attempts]

    def _enqueue_after_adoption(self) -> None:
        """The jobs adoption found, sent once the lock is let go (an inline job takes it again)."""
        while True:
            try:
                job = self._to_enqueue.pop(0)  # list.pop is atomic: each job is sent by one thread
            except IndexError:
                return
            job()

    # --- jobs --------------------------------------------------------------------------

    def ping_broker(self) -> None:
        """Raise unless the broker's backing service answers (a health check)."""
        ping(self.broker)

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

    def start_worker(self, threads: int | None = None, *, role: str = "worker",
                     stop: threading.Event | None = None) -> "WorkerGroup":
        """Dramatiq workers for every queue, each with its own threads ([workers] threads,
        delivery_threads, timer_threads, large_messages_at_once), and this process's
        heartbeat. The journals this host's stopped processes left are recorded first;
        with `stop`, a database that does not answer yet is waited for (until `stop` is set)."""
        log.info("delivery reports are read by %s", sisimai.describe(self.analyser, self.settings.source))
        self._wait_for_sender(stop)
        _quiet_about_several_workers(self.broker)
        workers = self.settings.workers
        sizes = {"inbound": threads or workers.threads, "outbound": workers.delivery_threads,
                 "timers": workers.timer_threads, "large": workers.large_messages_at_once}
        heartbeat = Heartbeat(self, role=role, queues=list(sizes))
        heartbeat.start()
        group = [dramatiq.Worker(self.broker, queues={queue}, worker_threads=count, worker_timeout=100)
                 for queue, count in sizes.items()]
        for worker in group:
            worker.start()
        return WorkerGroup(group, heartbeat)

    def _wait_for_sender(self, stop: threading.Event | None) -> None:
        delay = 0.5
        while True:
            try:
                self.sender()
                self.outage.succeeded()
                return
            except DatabaseUnavailable as error:
                if stop is None:
                    raise
                self.outage.failed(error, "starting the workers")
                if stop.wait(delay):
                    raise
                delay = min(delay * 2, self.settings.workers.heartbeat_seconds)

    def close(self) -> None:
        if self.analyser is not None:
            self.analyser.close()
        if self._sender is not None:
            self._sender.journal.close()
        self.database.dispose()
        try:
            self.broker.close()
        except Exception:  # closing a broker twice or after a lost connection is harmless
            log.debug("broker close failed", exc_info=True)


class _SeveralWorkers(logging.Filter):
    """One Dramatiq Worker per queue (each with its own threads) means one _WorkerMiddleware
    per Worker on the broker; Dramatiq allows it and warns each time. Said once here instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg.startswith("You're adding a middleware of the same type twice")
                    and type(record.args[0]).__name__ == "_WorkerMiddleware" if record.args else False)


def _quiet_about_several_workers(broker: dramatiq.Broker) -> None:
    if not any(isinstance(f, _SeveralWorkers) for f in broker.logger.filters):
        broker.logger.addFilter(_SeveralWorkers())


class WorkerGroup:
    """The Dramatiq workers of one process and its heartbeat, stopped together."""

    def __init__(self, workers: list[dramatiq.Worker], heartbeat: Heartbeat) -> None:
        self.workers = workers
        self.heartbeat = heartbeat

    def stop(self) -> None:
        """Let the jobs in progress finish (each queue's in parallel), then the last beat."""
        threads = [threading.Thread(target=worker.stop, name="worker-stop") for worker in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.heartbeat.stop()
