"""Prometheus metrics and health checks for administrators.

Counters that only the receiving process can see (SMTP answers) are kept in memory;
everything else is read from the database on each scrape, so every process reports the
same figures whatever runs where.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from gateway.db import Database, DatabaseUnavailable
from gateway.models import Bounce, Case, Event, Inbound, Outbox

log = logging.getLogger(__name__)
REGISTRY = CollectorRegistry()
SMTP_ANSWERS = Counter("dispute_gateway_smtp_answers", "SMTP answers given by the ingress, by result",
                       ["result"], registry=REGISTRY)
IMAP_STORED = Counter("dispute_gateway_imap_messages", "Messages read from IMAP mailboxes, by result",
                      ["result"], registry=REGISTRY)


class DatabaseCollector:
    """Figures read from the database at scrape time."""

    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self.database = database
        self.clock = clock

    def collect(self):
        now = self.clock()
        try:
            with self.database.unit_of_work() as db:
                yield from self._collect(db, now)
        except DatabaseUnavailable as error:
            log.warning("metrics: database unavailable: %s", error)

    def _collect(self, db, now):
        inbound = GaugeMetricFamily("dispute_gateway_inbound_messages", "Inbound messages by status", labels=["status"])
        for status, count in db.execute(select(Inbound.status, func.count()).group_by(Inbound.status)):
            inbound.add_metric([status], count)
        yield inbound
        unplaced = db.scalar(select(func.count()).select_from(Inbound).where(
            (Inbound.status == "quarantined") | Inbound.disposition.like("unplaced:%"))) or 0
        yield GaugeMetricFamily("dispute_gateway_quarantine_messages",
                                "Messages that failed processing or could not be placed", value=unplaced)
        outbox = GaugeMetricFamily("dispute_gateway_outbox_messages", "Outbox rows by status and kind",
                                   labels=["status", "kind"])
        for status, kind, count in db.execute(select(Outbox.status, Outbox.kind, func.count())
                                              .group_by(Outbox.status, Outbox.kind)):
            outbox.add_metric([status, kind], count)
        yield outbox
        oldest = db.scalar(select(func.min(Outbox.next_attempt_at)).where(Outbox.status.in_(("pending", "sending")),
                                                                          Outbox.next_attempt_at <= now))
        yield GaugeMetricFamily("dispute_gateway_outbox_oldest_due_seconds",
                                "Age of the oldest delivery that is due and not done",
                                value=(now - oldest).total_seconds() if oldest else 0)
        bounces = GaugeMetricFamily("dispute_gateway_bounces", "Delivery failures recorded, by kind", labels=["kind"])
        for kind, count in db.execute(select(Bounce.kind, func.count()).group_by(Bounce.kind)):
            bounces.add_metric([kind], count)
        yield bounces
        escalations = db.scalar(select(func.count()).select_from(Event).where(
            Event.kind.in_(("escalated", "merchant_bounced")))) or 0
        yield GaugeMetricFamily("dispute_gateway_escalations", "Case escalations recorded", value=escalations)
        cases = GaugeMetricFamily("dispute_gateway_cases", "Cases by state", labels=["state"])
        for state, count in db.execute(select(Case.state, func.count()).group_by(Case.state)):
            cases.add_metric([state], count)
        yield cases
        due = db.scalar(select(func.min(Case.next_due_at)).where(Case.next_due_at <= now))
        yield GaugeMetricFamily("dispute_gateway_timer_lag_seconds", "How late the most overdue case timer is",
                                value=(now - due).total_seconds() if due else 0)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def health(runtime) -> list[Check]:
    """Database, broker, smarthost and outbox checks; any failure makes the gateway unhealthy."""
    from workers.broker import ping

    checks = []
    try:
        runtime.database.ping()
        checks.append(Check("database", True, "reachable"))
    except DatabaseUnavailable as error:
        checks.append(Check("database", False, str(error)))
    try:
        ping(runtime.broker)
        checks.append(Check("broker", True, runtime.settings.broker.url.split("@")[-1]))
    except Exception as error:  # redis raises its own connection errors
        checks.append(Check("broker", False, f"{type(error).__name__}: {error}"))
    outbound = runtime.settings.outbound
    name = "smarthost" if outbound.smtp is not None else "maildir"
    try:
        runtime.relay.check()
        checks.append(Check(name, True, f"{outbound.smtp.host}:{outbound.smtp.port} answers" if outbound.smtp
                            else f"{outbound.maildir} is writable"))
    except Exception as error:
        checks.append(Check(name, False, str(error)))
    if checks[0].ok:
        now = runtime.now()
        try:
            with runtime.database.unit_of_work() as db:
                oldest = db.scalar(select(func.min(Outbox.next_attempt_at)).where(
                    Outbox.status.in_(("pending", "sending")), Outbox.next_attempt_at <= now))
        except DatabaseUnavailable as error:
            checks.append(Check("outbox", False, f"cannot read the outbox (run 'db upgrade'?): {error}"))
            return checks
        age = (now - oldest).total_seconds() if oldest else 0
        limit = runtime.settings.metrics.outbox_stuck_seconds
        checks.append(Check("outbox", age <= limit, f"oldest due delivery waits {int(age)} s (limit {limit} s)"))
    return checks


class _Handler(BaseHTTPRequestHandler):
    runtime = None

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.startswith("/metrics"):
            body, status, kind = generate_latest(REGISTRY), 200, CONTENT_TYPE_LATEST
        elif self.path.startswith("/healthz"):
            checks = health(self.runtime)
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
            _collector = DatabaseCollector(runtime.database, runtime.now)
            REGISTRY.register(_collector)
        _collector.database, _collector.clock = runtime.database, runtime.now
    handler = type("Handler", (_Handler,), {"runtime": runtime})
    server = ThreadingHTTPServer((settings.host, settings.port), handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics and health on http://%s:%s/metrics and /healthz", settings.host, settings.port)
    return server
