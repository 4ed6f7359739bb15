"""Health checks: what `/healthz` and `dispute-gateway health` report, each failing check
named with why, so a fault shows for as long as it lasts.

Checked: the database and the broker answer; the smarthost answers (or the Maildir is
there); no due delivery waits longer than [metrics] outbox_stuck_seconds; no delivery has
been retried for longer than [health] delivery_retry_seconds; no received message waits
longer than inbound_wait_seconds; every queue has a worker whose heartbeat is newer than
worker_stale_seconds; a scheduler swept within scheduler_stale_seconds; the smarthost's
250s kept in this host's sent journals reach the database; a required report analyser
([bounces] analyser = "sisimai") is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import sent_journal, sisimai
from gateway.config import ConfigError
from gateway.db import DatabaseUnavailable
from gateway.models import Inbound, Outbox, ProcessHeartbeat

QUEUES = ("inbound", "outbound", "timers", "large")
WORKER_ROLES = ("worker", "run")
JOURNAL_LATE_SECONDS = 30  # a journal entry older than this should have reached the database


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Figures:
    """What the database says about work in progress, read once for the checks and /metrics."""

    inbound_waiting: int = 0
    inbound_oldest_seconds: float = 0.0
    outbox_due_oldest_seconds: float = 0.0
    retrying: int = 0  # pending deliveries that failed at least once
    retrying_oldest_seconds: float = 0.0  # since the first failure of the oldest of them
    retrying_error: str | None = None
    live_processes: dict[str, int] = field(default_factory=dict)  # role -> processes with a fresh heartbeat
    queues_served: frozenset[str] = frozenset()
    worker_beat_age: float | None = None  # newest worker heartbeat, seconds
    scheduler_beat_age: float | None = None


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then else 0.0


def read_figures(db: Session, *, now: datetime, worker_stale_seconds: int) -> Figures:
    waiting, oldest_inbound = db.execute(select(func.count(), func.min(Inbound.received_at))
                                         .where(Inbound.status == "queued")).one()
    oldest_due = db.scalar(select(func.min(Outbox.next_attempt_at)).where(
        Outbox.status.in_(("pending", "sending")), Outbox.next_attempt_at <= now))
    retrying, first_failure = db.execute(select(func.count(), func.min(Outbox.first_failure_at)).where(
        Outbox.status.in_(("pending", "sending")), Outbox.first_failure_at.is_not(None))).one()
    error = None
    if retrying:
        error = db.scalar(select(Outbox.last_error).where(Outbox.status == "pending", Outbox.first_failure_at.is_not(None))
                          .order_by(Outbox.first_failure_at).limit(1))
    fresh = now - timedelta(seconds=worker_stale_seconds)
    live: dict[str, int] = {}
    served: set[str] = set()
    worker_beat = scheduler_beat = None
    for role, queues, beat_at, stopped_at in db.execute(select(
            ProcessHeartbeat.role, ProcessHeartbeat.queues, ProcessHeartbeat.beat_at, ProcessHeartbeat.stopped_at)):
        if role in WORKER_ROLES and stopped_at is None:
            worker_beat = max(worker_beat, beat_at) if worker_beat else beat_at
        if role == "scheduler":
            scheduler_beat = max(scheduler_beat, beat_at) if scheduler_beat else beat_at
        if stopped_at is None and beat_at >= fresh:
            live[role] = live.get(role, 0) + 1
            if role in WORKER_ROLES:
                served.update(queues or ())
    return Figures(
        inbound_waiting=waiting or 0, inbound_oldest_seconds=_age(now, oldest_inbound),
        outbox_due_oldest_seconds=_age(now, oldest_due), retrying=retrying or 0,
        retrying_oldest_seconds=_age(now, first_failure), retrying_error=error, live_processes=live,
        queues_served=frozenset(served), worker_beat_age=_age(now, worker_beat) if worker_beat else None,
        scheduler_beat_age=_age(now, scheduler_beat) if scheduler_beat else None)


def figure_checks(figures: Figures, settings) -> list[Check]:
    """The checks that read the database's figures; pure."""
    health, stuck = settings.health, settings.metrics.outbox_stuck_seconds
    checks = [Check("outbox", figures.outbox_due_oldest_seconds <= stuck,
                    f"oldest due delivery waits {int(figures.outbox_due_oldest_seconds)} s (limit {stuck} s)")]
    if figures.retrying and figures.retrying_oldest_seconds > health.delivery_retry_seconds:
        checks.append(Check("retrying", False, f"{figures.retrying} deliveries being retried, the oldest for "
                            f"{int(figures.retrying_oldest_seconds)} s (limit {health.delivery_retry_seconds} s); "
                            f"last error: {(figures.retrying_error or '-')[:200]}"))
    else:
        checks.append(Check("retrying", True, f"{figures.retrying} deliveries being retried"
                            + (f", the oldest for {int(figures.retrying_oldest_seconds)} s" if figures.retrying else "")
                            + f" (limit {health.delivery_retry_seconds} s)"))
    checks.append(Check("inbound", figures.inbound_oldest_seconds <= health.inbound_wait_seconds,
                        f"{figures.inbound_waiting} messages wait to be processed"
                        + (f", the oldest for {int(figures.inbound_oldest_seconds)} s" if figures.inbound_waiting else "")
                        + f" (limit {health.inbound_wait_seconds} s)"))
    missing = [q for q in QUEUES if q not in figures.queues_served]
    alive = sum(figures.live_processes.get(role, 0) for role in WORKER_ROLES)
    last = ("never" if figures.worker_beat_age is None else f"{int(figures.worker_beat_age)} s ago")
    if missing:
        checks.append(Check("workers", False, f"no worker heartbeat in the last {health.worker_stale_seconds} s for "
                            f"the queues {', '.join(missing)} (newest worker heartbeat: {last})"))
    else:
        checks.append(Check("workers", True, f"{alive} worker processes alive (newest heartbeat {last})"))
    age = figures.scheduler_beat_age
    checks.append(Check("scheduler", age is not None and age <= health.scheduler_stale_seconds,
                        ("no scheduler has ever swept" if age is None else f"last sweep {int(age)} s ago")
                        + f" (limit {health.scheduler_stale_seconds} s)"))
    return checks


def journal_check(settings, *, now: datetime) -> Check:
    """The smarthost 250s held in this host's sent journals that the database does not have."""
    folder = settings.outbound.journal_dir
    entries = [entry for sub in (sorted(folder.iterdir()) if folder.is_dir() else []) if sub.is_dir()
               for _, entry in sent_journal.waiting(sub)]
    if not entries:
        return Check("journal", True, f"nothing waiting in {folder}")
    oldest = min(entry.at for entry in entries)
    late = _age(now, oldest) > JOURNAL_LATE_SECONDS
    return Check("journal", not late, f"{len(entries)} deliveries accepted by the smarthost are not yet recorded in "
                 f"the database (oldest {int(_age(now, oldest))} s ago); they are kept in {folder}")


def analyser_check(analyser) -> Check:
    """Who reads delivery reports here; fails only where Sisimai is required and missing."""
    try:
        return Check("reports", True, f"read by {sisimai.describe(analyser)}")
    except ConfigError as error:
        return Check("reports", False, str(error).split(": ", 1)[-1])


class Services(Protocol):
    """What the checks read: the running process's database, broker, transport and clock
    (workers.runtime.Runtime)."""

    settings: object
    database: object
    transport: object
    analyser: object  # gateway.sisimai.Sisimai, or None

    def now(self) -> datetime: ...

    def ping_broker(self) -> None: ...


def health(runtime: Services) -> list[Check]:
    """Every check; any failure makes the gateway unhealthy."""
    checks = []
    try:
        runtime.database.ping()
        checks.append(Check("database", True, "reachable"))
    except DatabaseUnavailable as error:
        checks.append(Check("database", False, f"unreachable: {error}"))
    try:
        runtime.ping_broker()
        checks.append(Check("broker", True, runtime.settings.broker.url.split("@")[-1]))
    except Exception as error:  # redis raises its own connection errors
        checks.append(Check("broker", False, f"unreachable: {type(error).__name__}: {error}"))
    outbound = runtime.settings.outbound
    name = "smarthost" if outbound.smtp is not None else "maildir"
    try:
        runtime.transport.check()
        checks.append(Check(name, True, f"{outbound.smtp.host}:{outbound.smtp.port} answers" if outbound.smtp
                            else f"{outbound.maildir} is writable"))
    except Exception as error:
        checks.append(Check(name, False, str(error)))
    now = runtime.now()
    checks.append(journal_check(runtime.settings, now=now))
    if runtime.analyser is not None:
        checks.append(analyser_check(runtime.analyser))
    if checks[0].ok:
        try:
            with runtime.database.unit_of_work() as db:
                figures = read_figures(db, now=now, worker_stale_seconds=runtime.settings.health.worker_stale_seconds)
        except DatabaseUnavailable as error:
            checks.append(Check("outbox", False, f"cannot read the outbox (run 'db upgrade'?): {error}"))
            return checks
        checks.extend(figure_checks(figures, runtime.settings))
    return checks
