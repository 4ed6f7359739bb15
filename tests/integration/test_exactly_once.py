"""Exactly once, in one process (the fault matrix in tests/faults does it with real
processes): an attempt whose outcome is unknown gets one delayed, logged retry; a dead
process's journal is recorded and what it was sending goes back once; a slow delivery
keeps its claim; lost jobs are found at the next sweep; a hanging smarthost never holds
up intake; health and metrics name every fault; the admin commands say "database
unreachable" in one line."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import func, select

from gateway import health, metrics, store
from gateway.cli import main
from gateway.transport import SmtpTransport, UncertainDelivery
from gateway.sent_journal import Accepted
from gateway.settings import SmtpOutboundSettings
from gateway.models import Inbound, Outbox, ProcessHeartbeat
from tests.faults.smarthost import FaultSmarthost
from tests.harness import CUSTOMER, DOMAIN, Gateway, build_mail, free_port, settings_for, wait_until

QUICK = {"threads": 2, "heartbeat_seconds": 1, "lease_seconds": 60, "sweep_interval_seconds": 3600}


@pytest.fixture
def smarthost():
    host = FaultSmarthost()
    yield host
    host.stop()


@pytest.fixture
def start(tmp_path, smarthost, clock):
    started: list[Gateway] = []

    def make(backend, *, workers=True, timeout=5, uncertain=2, **worker_settings) -> Gateway:
        settings = settings_for(tmp_path, backend, smarthost.port,
                                outbound={"smtp": {"host": "127.0.0.1", "port": smarthost.port,
                                                   "timeout_seconds": timeout},
                                          "retry_base_seconds": 1, "retry_max_seconds": 2, "max_attempts": 100,
                                          "uncertain_retry_seconds": uncertain},
                                workers={**QUICK, **worker_settings})
        gateway = Gateway(settings, clock=clock, workers=workers)
        started.append(gateway)
        gateway.load(tmp_path)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


def _complain(gateway, n: int = 1) -> None:
    for i in range(n):
        reference = ("TX-1001", "TX-1002")[i % 2]
        sender = CUSTOMER
        gateway.send(build_mail(sender=sender, to=f"delivery@{DOMAIN}", subject=f"{reference} never arrived",
                                body=f"Parcel {reference} never arrived ({i})."), to=f"delivery@{DOMAIN}")


def _rows(gateway, *where):
    with gateway.runtime.database.unit_of_work() as db:
        return db.scalars(select(Outbox).where(*where).order_by(Outbox.id)).all()


def _wait(predicate, timeout=30.0, what=""):
    wait_until(predicate, timeout, what)


def _settled(gateway, smarthost, *, accepted_elsewhere: tuple[int, ...] = ()) -> bool:
    rows = _rows(gateway)
    copies = smarthost.copies()
    return bool(rows) and all(r.status in ("sent", "failed") for r in rows) and all(
        copies[(r.message_id, r.recipient.lower())] for r in rows if r.status == "sent" and r.id not in accepted_elsewhere)


def test_the_relay_tells_a_connection_lost_after_the_data_from_one_lost_before(smarthost):
    relay = SmtpTransport(SmtpOutboundSettings(host="127.0.0.1", port=smarthost.port, timeout_seconds=5))
    raw = build_mail(sender="a@d.test", to="b@e.test")
    relay.send("bounce+x@d.test", "b@e.test", raw)
    smarthost.set("lost_250", budget=1)
    with pytest.raises(UncertainDelivery):  # it may be stored (it is): the relay never resends by itself
        relay.send("bounce+x@d.test", "b@e.test", raw)
    assert len(smarthost.received) == 2
    smarthost.set("drop_before_250", budget=1)
    with pytest.raises(UncertainDelivery):  # from here the same thing: nothing tells the two apart
        relay.send("bounce+x@d.test", "b@e.test", raw)
    assert len(smarthost.received) == 2
    smarthost.set("drop_after_250", budget=1)
    relay.send("bounce+x@d.test", "b@e.test", raw)  # the 250 arrived: done
    relay.send("bounce+x@d.test", "b@e.test", raw)  # the kept connection is closed: a new one, at once
    assert len(smarthost.received) == 4


@pytest.mark.parametrize("mode, copies", [("lost_250", 2), ("drop_before_250", 1)])
def test_an_unknown_outcome_gets_one_delayed_logged_retry_with_the_same_message_id(
        sqlite_backend, start, smarthost, caplog, mode, copies):
    gateway = start(sqlite_backend, uncertain=2)
    smarthost.set(mode, budget=1)
    caplog.set_level(logging.INFO)
    _complain(gateway)
    _wait(lambda: smarthost.faults == 1, what="the fault")
    faulted = time.monotonic()
    _wait(lambda: _settled(gateway, smarthost), what="every delivery")
    retried = [r for r in _rows(gateway) if r.attempts == 2]
    assert len(retried) == 1 and time.monotonic() - faulted >= 1.5  # after the delay, not at once
    key = (retried[0].message_id, retried[0].recipient.lower())
    assert smarthost.copies()[key] == copies and max(smarthost.copies().values()) == copies
    lines = [r.getMessage() for r in caplog.records if retried[0].message_id in r.getMessage()]
    assert any("one retry at" in line for line in lines)
    assert any("sending again" in line and "same Message-ID" in line for line in lines)


def test_a_stopped_process_journal_is_recorded_and_its_claims_get_one_delayed_retry(backend, start, smarthost, caplog):
    gateway = start(backend, workers=False)
    _complain(gateway)
    with gateway.runtime.database.unit_of_work() as db:
        inbound_id = db.scalar(select(Inbound.id))
    gateway.runtime.process_inbound.fn(inbound_id)  # its deliveries are queued; no worker runs yet
    first, second, *_ = _rows(gateway)
    dead = "deadhost-4242-abcdef"  # claimed two rows; the smarthost had accepted the first
    now = datetime.now(timezone.utc)
    with gateway.runtime.database.unit_of_work() as db:
        for row in (first, second):
            row = db.get(Outbox, row.id)
            row.status, row.holder, row.lease_until, row.attempts = "sending", dead, now + timedelta(hours=1), 1
        store.beat(db, dead, role="worker", hostname="deadhost", pid=4242, queues=["outbound"], started_at=now,
                   now=now)
        instance = store.instance_id(db, now=now)
    folder = gateway.settings.outbound.journal_dir / instance
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{dead}.journal").write_bytes(Accepted(first.id, now, first.message_id).line())
    caplog.set_level(logging.INFO)
    gateway.worker = gateway.runtime.start_worker(2)  # a restarted worker records the journal before it sends
    assert db_row(gateway, first.id).status == "sent"
    assert db_row(gateway, second.id).uncertain
    assert any(f"process {dead} stopped: recorded 1" in r.getMessage() for r in caplog.records)
    _wait(lambda: _settled(gateway, smarthost, accepted_elsewhere=(first.id,)), what="every delivery")
    copies = smarthost.copies()
    assert copies[(first.message_id, first.recipient.lower())] == 0  # accepted before: never sent again
    assert copies[(second.message_id, second.recipient.lower())] == 1 and max(copies.values()) == 1
    with gateway.runtime.database.unit_of_work() as db:
        assert db.get(ProcessHeartbeat, dead).stopped_at is not None


def db_row(gateway, outbox_id):
    with gateway.runtime.database.unit_of_work() as db:
        return db.get(Outbox, outbox_id)


def test_a_delivery_slower_than_its_lease_keeps_its_claim(sqlite_backend, start, smarthost, clock):
    gateway = start(sqlite_backend, timeout=5, lease_seconds=10, heartbeat_seconds=1)
    smarthost.slow_seconds = 1.5  # MAIL, RCPT and the end of DATA: a slow delivery, every answer in time
    _complain(gateway)
    _wait(lambda: any(r.status == "sending" for r in _rows(gateway)), what="a delivery under way")
    for _ in range(2):  # 16 s on the gateway's clock while the delivery runs: past its 10 s claim
        clock.advance(timedelta(seconds=8))
        time.sleep(1.5)  # a heartbeat
    assert any(r.status == "sending" for r in _rows(gateway))
    assert gateway.sweep().abandoned == 0  # the heartbeat renewed the claim: not taken for a dead sender's
    smarthost.slow_seconds = 0
    _wait(lambda: _settled(gateway, smarthost), what="every delivery")
    assert max(smarthost.copies().values()) == 1


@pytest.fixture
def postgres_backend():
    from tests.conftest import _postgres_backend

    backend = _postgres_backend()
    yield backend
    backend.cleanup()


@pytest.mark.postgres
@pytest.mark.redis
def test_jobs_lost_with_redis_are_found_at_the_next_sweep_not_after_a_lease(postgres_backend, start, smarthost, clock,
                                                                             caplog):
    gateway = start(postgres_backend, workers=False)
    _complain(gateway)
    gateway.runtime.broker.flush_all()  # the queue is lost (Redis flushed)
    assert gateway.sweep().lost == 0  # within the grace after the commit: its job may be on its way
    clock.advance(timedelta(seconds=6))
    caplog.set_level(logging.INFO)
    report = gateway.sweep()
    assert (report.lost, report.inbound) == (1, 1)  # the lease (60 s) has not run out
    assert any("missing from the broker" in r.getMessage() for r in caplog.records)
    assert gateway.sweep().lost == 0  # its job is there now
    gateway.worker = gateway.runtime.start_worker(2)
    _wait(lambda: _settled(gateway, smarthost), what="every delivery")
    assert max(smarthost.copies().values()) == 1


def test_a_hanging_smarthost_never_holds_up_intake(backend, start, smarthost):
    gateway = start(backend, timeout=5)
    smarthost.hang_seconds = 8
    smarthost.set("hang")
    _complain(gateway, 4)  # 20 deliveries hang; the 4 messages are processed regardless
    _wait(lambda: _count(gateway, Inbound, Inbound.status == "processed") == 4, timeout=6,
          what="intake while deliveries hang")
    assert smarthost.received == []
    smarthost.set("ok")


def _count(gateway, model, *where):
    with gateway.runtime.database.unit_of_work() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def _failing(gateway) -> dict[str, str]:
    return {c.name: c.detail for c in health.health(gateway.runtime) if not c.ok}


def test_health_names_a_missing_worker_waiting_mail_and_long_retries(sqlite_backend, start, smarthost, clock):
    gateway = start(sqlite_backend, workers=False)
    gateway.sweep()
    assert "workers" in _failing(gateway) and "inbound, outbound, timers, large" in _failing(gateway)["workers"]
    _complain(gateway)
    clock.advance(timedelta(seconds=301))
    gateway.sweep()
    assert "the oldest for 30" in _failing(gateway)["inbound"]
    smarthost.set("tempfail")
    gateway.worker = gateway.runtime.start_worker(2)
    _wait(lambda: _count(gateway, Inbound, Inbound.status == "processed") == 1, what="processing")
    _wait(lambda: all(r.first_failure_at for r in _rows(gateway)), what="the 451s")
    clock.advance(timedelta(seconds=1801))
    gateway.sweep()
    _wait(lambda: "workers" not in _failing(gateway), what="a heartbeat at the new time")
    failing = _failing(gateway)
    assert set(failing) == {"retrying"} and "451" in failing["retrying"] and "5 deliveries" in failing["retrying"]
    smarthost.set("ok")


def test_metrics_keep_their_families_and_say_the_database_is_down(tmp_path, sqlite_backend):
    down = settings_for(tmp_path, sqlite_backend, None, database={
        "url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"})
    from gateway.db import Database

    registry = CollectorRegistry()
    database = Database(down.database.url)
    registry.register(metrics.DatabaseCollector(database, lambda: datetime.now(timezone.utc), down))
    text = generate_latest(registry).decode()
    database.dispose()
    assert "dispute_gateway_database_up 0.0" in text
    for name, _, _ in metrics.DATABASE_FAMILIES:
        assert f"# TYPE {name} gauge" in text


def test_escalations_count_each_case_once(sqlite_backend, start, smarthost):
    gateway = start(sqlite_backend)
    _complain(gateway, 2)
    _wait(lambda: _settled(gateway, smarthost), what="the cases")
    with gateway.runtime.database.unit_of_work() as db:
        from gateway.models import Case

        cases = db.scalars(select(Case)).all()
        now = datetime.now(timezone.utc)
        for case in cases:  # each escalated, then its merchant's address bounced
            store.add_event(db, case, "escalated", at=now)
            store.add_event(db, case, "merchant_bounced", at=now)
    registry = CollectorRegistry()
    registry.register(metrics.DatabaseCollector(gateway.runtime.database, gateway.runtime.now, gateway.settings))
    assert "dispute_gateway_escalations 2.0" in generate_latest(registry).decode()


def _config_file(tmp_path, tables: str):
    config = tmp_path / "gw.toml"
    config.write_text(f"""
[gateway]
domain = "{DOMAIN}"
secret_keys = ["a-secret-key-of-32-characters-00"]
staff_addresses = ["staff@ops.test"]
{tables}""")
    return str(config)


@pytest.mark.parametrize("command", [["quarantine", "list"], ["outbox", "list"], ["cases", "list"], ["db", "upgrade"]])
def test_admin_commands_say_database_unreachable_in_one_line(tmp_path, capsys, command):
    config = _config_file(tmp_path, f'[database]\nurl = "postgresql+psycopg://gw:secret@127.0.0.1:{free_port()}/gw"\n'
                                    '[outbound]\nmaildir = "out"\n')
    assert main(["--config", config, *command]) == 3
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: database unreachable: postgresql+psycopg://gw:***@127.0.0.1:")
    assert "\n" not in error and "secret" not in error and "Connection refused" in error


def test_a_lease_shorter_than_the_smtp_timeout_stops_the_worker_at_start(tmp_path, capsys):
    config = _config_file(tmp_path, '[broker]\nurl = "redis://127.0.0.1:6379/15"\n[outbound.smtp]\nhost = "127.0.0.1"\n'
                                    'timeout_seconds = 30\n[workers]\nlease_seconds = 10\n')
    assert main(["--config", config, "worker"]) == 2
    error = capsys.readouterr().err.strip()
    assert "lease_seconds" in error and "sent twice" in error and "\n" not in error
    assert not os.path.exists(tmp_path / "sent-journal")


def test_health_with_the_database_down_fails_and_says_why(tmp_path, capsys):
    config = _config_file(tmp_path, f'[database]\nurl = "postgresql+psycopg://gw@127.0.0.1:{free_port()}/gw"\n'
                                    f'[outbound]\nmaildir = "out"\njournal_dir = "{tmp_path / "journal"}"\n')
    assert main(["--config", config, "health"]) == 1
    out = capsys.readouterr().out
    assert "FAIL database: unreachable: connection failed" in out and "ok   broker" in out


def test_a_stopped_process_attempt_at_a_message_is_over_at_once(sqlite_backend, start, smarthost, clock, caplog):
    gateway = start(sqlite_backend, workers=False)
    _complain(gateway)
    dead, now = "deadhost-4343-fedcba", clock.now()
    with gateway.runtime.database.unit_of_work() as db:
        inbound = db.scalar(select(Inbound))
        inbound.attempts, inbound.started_at, inbound.holder = 1, now, dead  # killed while processing it
        store.beat(db, dead, role="worker", hostname="deadhost", pid=4343, queues=["inbound"], started_at=now, now=now)
        instance = store.instance_id(db, now=now)
    folder = gateway.settings.outbound.journal_dir / instance
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{dead}.journal").write_bytes(b"")  # its lock is free: it is gone
    caplog.set_level(logging.INFO)
    gateway.worker = gateway.runtime.start_worker(2)
    _wait(lambda: _count(gateway, Inbound, Inbound.status == "processed") == 1, timeout=10,
          what="the message, without waiting for processing_time_limit_seconds")
    with gateway.runtime.database.unit_of_work() as db:
        assert db.scalar(select(Inbound.attempts)) == 2  # the killed attempt still counts
    assert any(f"process {dead} stopped while processing inbound" in r.getMessage() for r in caplog.records)
