"""A message whose processing fails: every attempt counts (a time limit and a dead worker
too), it is retried with backoff a bounded number of times, then quarantined with its
error, and staff hear of it once (a digest when many)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlalchemy import select

from gateway import pipeline
from gateway.cli import main
from gateway.models import Inbound
from tests.harness import CUSTOMER, DOMAIN, MERCHANT, STAFF, build_mail, write_config


def _complaint(gateway, n: int = 0) -> None:
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject=f"TX-1001 lost ({n})",
                            body="My parcel TX-1001 never arrived."), to=f"delivery@{DOMAIN}")


def _inbound(gateway) -> list[Inbound]:
    with gateway.runtime.database.unit_of_work() as db:
        return list(db.scalars(select(Inbound).order_by(Inbound.id)))


def _staff_reports(sink) -> list[str]:
    return [r.header("Subject") for r in sink.to(STAFF[0]) if "need" in r.header("Subject")]


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_message_that_fails_twice_is_tried_again_and_processed_once(backend, make_gateway, sink, monkeypatch):
    gateway = make_gateway(backend, worker_settings={"inbound_retry_seconds": 1})
    original, calls = pipeline.dispatch, []

    def flaky(step, match):
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("a passing fault")
        return original(step, match)

    monkeypatch.setattr(pipeline, "dispatch", flaky)
    _complaint(gateway)
    _wait(lambda: _inbound(gateway)[0].status == "processed")
    gateway.settle()
    row = _inbound(gateway)[0]
    assert row.attempts == 3 and row.started_at is None
    assert len([r for r in sink.to(MERCHANT) if "never arrived" in r.text()]) == 1  # relayed once
    assert _staff_reports(sink) == []


def test_a_message_that_keeps_failing_is_quarantined_after_its_attempts(backend, make_gateway, sink, monkeypatch):
    gateway = make_gateway(backend, worker_settings={"inbound_retry_seconds": 1, "inbound_max_attempts": 3})

    def broken(step, match):
        raise ValueError("this message trips a bug")

    monkeypatch.setattr(pipeline, "dispatch", broken)
    _complaint(gateway)
    _wait(lambda: _inbound(gateway)[0].status == "quarantined")
    gateway.settle()
    row = _inbound(gateway)[0]
    assert row.attempts == 3 and "this message trips a bug" in row.error
    assert row.disposition == "quarantined: processing failed 3 time(s)"
    assert len(_staff_reports(sink)) == 1  # told once, not once per attempt


def test_an_attempt_past_the_time_limit_counts_and_is_quarantined(sqlite_backend, make_gateway, sink, monkeypatch):
    gateway = make_gateway(sqlite_backend, worker_settings={"inbound_max_attempts": 1,
                                                            "processing_time_limit_seconds": 5})

    def endless(step, match):
        for _ in range(600):  # a quadratic parser on hostile input, say
            time.sleep(0.1)

    monkeypatch.setattr(pipeline, "dispatch", endless)
    _complaint(gateway)
    _wait(lambda: _inbound(gateway)[0].status == "quarantined", timeout=40)
    row = _inbound(gateway)[0]
    assert row.attempts == 1 and "TimeLimitExceeded" in row.error


def test_an_attempt_whose_worker_died_counts(sqlite_backend, make_gateway, sink, clock):
    gateway = make_gateway(sqlite_backend, workers=False, worker_settings={"inbound_max_attempts": 2})
    _complaint(gateway)
    inbound_id = _inbound(gateway)[0].id
    settings = gateway.settings
    for _ in range(2):  # two attempts begin, and their worker dies each time (kill -9)
        with gateway.runtime.database.connection() as connection:
            assert pipeline.begin_attempt(connection, inbound_id, settings=settings, now=clock.now()) is not None
        clock.advance(timedelta(minutes=10))
    gateway.worker = gateway.runtime.start_worker(2)
    gateway.runtime.process_inbound.fn(inbound_id)  # the sweep's next try finds them used up
    gateway.settle()
    row = _inbound(gateway)[0]
    assert row.status == "quarantined" and "did not finish" in row.error
    assert len(_staff_reports(sink)) == 1


def test_many_failures_cost_staff_one_mail_then_one_digest(sqlite_backend, make_gateway, sink, monkeypatch, clock,
                                                           tmp_path, capsys):
    gateway = make_gateway(sqlite_backend, worker_settings={"inbound_max_attempts": 1})

    def broken(step, match):
        raise ValueError("broken")

    monkeypatch.setattr(pipeline, "dispatch", broken)
    for n in range(24):
        _complaint(gateway, n)
    _wait(lambda: sum(row.status == "quarantined" for row in _inbound(gateway)) == 24)
    gateway.settle()
    assert len(_staff_reports(sink)) == 1  # the first at once, the others wait for the digest
    gateway.sweep()
    gateway.settle()
    assert len(_staff_reports(sink)) == 1  # still within the hour
    clock.advance(timedelta(minutes=61))
    gateway.sweep()
    gateway.settle()
    reports = [r for r in sink.to(STAFF[0]) if "need" in r.header("Subject")]
    assert len(reports) == 2 and reports[-1].header("Subject").startswith("23 more inbound message(s)")
    clock.advance(timedelta(minutes=61))
    gateway.sweep()
    gateway.settle()
    assert len(_staff_reports(sink)) == 2  # nothing new: no empty digest
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    capsys.readouterr()
    assert main(["--config", str(config), "quarantine", "list", "--per-page", "20"], clock=gateway.clock) == 0
    out = capsys.readouterr().out
    assert "24 message(s) in quarantine; showing 1-20 (page 1 of 2, newest first; next: --page 2)" in out
    assert main(["--config", str(config), "quarantine", "list", "--per-page", "20", "--page", "2", "--json"],
                clock=gateway.clock) == 0
    page = json.loads(capsys.readouterr().out)
    assert page["total"] == 24 and len(page["messages"]) == 4 and page["messages"][-1]["id"] == 1
