"""Prometheus metrics and the /metrics and /healthz endpoints for administrators.

Counters that only one process can see (SMTP answers, resends, lost jobs repaired,
database outages) are kept in memory; everything else is read from the database on each
scrape, so every process reports the same figures whatever runs where. While the database
is down, its families stay (without samples) and dispute_gateway_database_up is 0; the
in-memory counters go on.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from gateway import health, sent_journal, store
from gateway.cases.machine import EventKind
from gateway.db import Database, DatabaseUnavailable
from gateway.models import Bounce, Case, Event, Inbound, Outbox

log = logging.getLogger(__name__)
REGISTRY = CollectorRegistry()
SMTP_ANSWERS = Counter("dispute_gateway_smtp_answers", "SMTP answers given by the ingress, by result",
                       ["result"], registry=REGISTRY)
IMAP_STORED = Counter("dispute_gateway_imap_messages", "Messages read from IMAP mailboxes, by result",
                      ["result"], registry=REGISTRY)
RESENDS = Counter("dispute_gateway_resends", "Deliveries sent again after an attempt whose outcome was unknown",
                  registry=REGISTRY)
LOST_JOBS = Counter("dispute_gateway_lost_jobs_requeued", "Jobs missing from the broker, found and enqueued again",
                    ["kind"], registry=REGISTRY)
DATABASE_OUTAGES = Counter("dispute_gateway_database_outages", "Episodes of the database being unavailable, as "
                           "this process saw them", registry=REGISTRY)


# (name, help, labels) of every family read from the database: each is exposed on every
# scrape, empty while the database is down (dispute_gateway_database_up then says 0).
DATABASE_FAMILIES = (
    ("dispute_gateway_inbound_messages", "Inbound messages by status", ["status"]),
    ("dispute_gateway_inbound_oldest_waiting_seconds", "How long the oldest unprocessed inbound message has waited", []),
    ("dispute_gateway_quarantine_messages", "Messages that failed processing or could not be placed", []),
    ("dispute_gateway_outbox_messages", "Outbox rows by status and kind", ["status", "kind"]),
    ("dispute_gateway_outbox_oldest_due_seconds", "Age of the oldest delivery that is due and not done", []),
    ("dispute_gateway_outbox_retrying", "Deliveries not done that failed at least once", []),
    ("dispute_gateway_outbox_oldest_retry_seconds", "Time since the first failure of the oldest delivery being retried", []),
    ("dispute_gateway_bounces", "Delivery failures recorded, by kind", ["kind"]),
    ("dispute_gateway_escalations", "Cases escalated to staff (each case once)", []),
    ("dispute_gateway_cases", "Cases by state", ["state"]),
    ("dispute_gateway_timer_lag_seconds", "How late the most overdue case timer is", []),
    ("dispute_gateway_processes_alive", "Gateway processes with a fresh heartbeat, by role", ["role"]),
    ("dispute_gateway_scheduler_last_sweep_seconds", "Time since a scheduler last swept", []),
)


class DatabaseCollector:
    """Figures read from the database at scrape time; while it is down, the families are
    there without samples and dispute_gateway_database_up is 0."""

    def __init__(self, database: Database, clock: Callable[[], datetime], settings) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings

    def collect(self):
        families = {name: GaugeMetricFamily(name, text, labels=labels) for name, text, labels in DATABASE_FAMILIES}
        up = 1
        try:
            with self.database.unit_of_work() as db:
                self._fill(db, self.clock(), families)
        except DatabaseUnavailable as error:
            log.debug("metrics: database unavailable: %s", error)
            families = {name: GaugeMetricFamily(name, text, labels=labels) for name, text, labels in DATABASE_FAMILIES}
            up = 0
        yield GaugeMetricFamily("dispute_gateway_database_up", "Whether the database answered this scrape", value=up)
        yield from families.values()
        folder = self.settings.outbound.journal_dir
        waiting = sum(len(sent_journal.waiting(sub)) for sub in (folder.iterdir() if folder.is_dir() else ())
                      if sub.is_dir())
        yield GaugeMetricFamily("dispute_gateway_sent_journal_waiting", "Smarthost 250s kept in this host's sent "
                                "journals that the database has not recorded yet", value=waiting)

    def _fill(self, db, now, families) -> None:
        f = families
        for status, count in db.execute(select(Inbound.status, func.count()).group_by(Inbound.status)):
            f["dispute_gateway_inbound_messages"].add_metric([status], count)
        figures = health.read_figures(db, now=now, worker_stale_seconds=self.settings.health.worker_stale_seconds)
        f["dispute_gateway_inbound_oldest_waiting_seconds"].add_metric([], figures.inbound_oldest_seconds)
        unplaced = db.scalar(select(func.count()).select_from(Inbound).where(store.kept_for_staff())) or 0
        f["dispute_gateway_quarantine_messages"].add_metric([], unplaced)
        for status, kind, count in db.execute(select(Outbox.status, Outbox.kind, func.count())
                                              .group_by(Outbox.status, Outbox.kind)):
            f["dispute_gateway_outbox_messages"].add_metric([status, kind], count)
        f["dispute_gateway_outbox_oldest_due_seconds"].add_metric([], figures.outbox_due_oldest_seconds)
        f["dispute_gateway_outbox_retrying"].add_metric([], figures.retrying)
        f["dispute_gateway_outbox_oldest_retry_seconds"].add_metric([], figures.retrying_oldest_seconds)
        for kind, count in db.execute(select(Bounce.kind, func.count()).group_by(Bounce.kind)):
            f["dispute_gateway_bounces"].add_metric([kind], count)
        escalated = db.scalar(select(func.count(func.distinct(Event.case_id))).where(
            Event.kind.in_((EventKind.ESCALATED.value, EventKind.MERCHANT_BOUNCED.value)))) or 0
        f["dispute_gateway_escalations"].add_metric([], escalated)
        for state, count in db.execute(select(Case.state, func.count()).group_by(Case.state)):
            f["dispute_gateway_cases"].add_metric([state], count)
        due = db.scalar(select(func.min(Case.next_due_at)).where(Case.next_due_at <= now))
        f["dispute_gateway_timer_lag_seconds"].add_metric([], (now - due).total_seconds() if due else 0)
        for role, count in figures.live_processes.items():
            f["dispute_gateway_processes_alive"].add_metric([role], count)
        if figures.scheduler_beat_age is not None:
            f["dispute_gateway_scheduler_last_sweep_seconds"].add_metric([], figures.scheduler_beat_age)


class _Handler(BaseHTTPRequestHandler):
    runtime = None

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.startswith("/metrics"):
            body, status, kind = generate_latest(REGISTRY), 200, CONTENT_TYPE_LATEST
        elif self.path.startswith("/healthz"):
            checks = health.health(self.runtime)
            ok = all(c.ok for c in checks)
            body = json.dumps({"ok": ok, "checks": [c.__dict__ for c in checks]}).encode()
            status, kind = (200 if ok else 503), "application/json"
        else:
            body, status, kind = b"not found\n", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return None


_collector_lock = threading.Lock()
_collector: DatabaseCollector | None = None


def serve(runtime) -> ThreadingHTTPServer | None:
    """Start /metrics and /healthz on [metrics] host:port in a thread (None when disabled)."""
    settings = runtime.settings.metrics
    if not settings.enabled:
        return None
    global _collector
    with _collector_lock:  # one collector per process, reading the latest runtime's database
        if _collector is None:
            _collector = DatabaseCollector(runtime.database, runtime.now, runtime.settings)
            REGISTRY.register(_collector)
        _collector.database, _collector.clock, _collector.settings = runtime.database, runtime.now, runtime.settings
    handler = type("Handler", (_Handler,), {"runtime": runtime})
    server = ThreadingHTTPServer((settings.host, settings.port), handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics and health on http://%s:%s/metrics and /healthz", settings.host, settings.port)
    return server
