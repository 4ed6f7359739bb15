"""What administrators use to see what the gateway does: trace, quarantine, outbox,
health and metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from sqlalchemy import func, select

from gateway import metrics, pipeline
from gateway.cli import main
from gateway.models import Case, Inbound, Outbox
from tests.harness import CUSTOMER, DOMAIN, MERCHANT, build_mail, free_port, write_config


def _config(gateway, tmp_path):
    return str(write_config(tmp_path / "admin.toml", gateway.settings))


def test_trace_prints_every_decision_and_changes_nothing(sqlite_backend, make_gateway, tmp_path, capsys):
    gateway = make_gateway(sqlite_backend)
    eml = tmp_path / "m.eml"
    eml.write_bytes(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 never arrived",
                               body="My parcel TX-1001 never arrived."))
    assert main(["--config", _config(gateway, tmp_path), "trace", str(eml)], clock=gateway.clock) == 0
    out = capsys.readouterr().out
    for expected in ("== parsed", "RCPT TO: <delivery@disputes.test> -> 250 accepted", "human: no automatic-mail signal",
                     "IntakeMatch", "delivery case opened", "(new case) -> awaiting_merchant",
                     f"relay to the merchant <{MERCHANT}>", f"ack_delivery to the customer <{CUSTOMER}>"):
        assert expected in out
    with gateway.runtime.database.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Case)) == 0
        assert db.scalar(select(func.count()).select_from(Outbox)) == 0
        assert db.scalar(select(func.count()).select_from(Inbound)) == 0


def test_trace_explains_a_bounce_and_a_refused_address(sqlite_backend, make_gateway, tmp_path, capsys, eml):
    gateway = make_gateway(sqlite_backend)
    path = tmp_path / "dsn.eml"
    path.write_bytes(eml("postfix_dsn_unknown_user.eml"))
    assert main(["--config", _config(gateway, tmp_path), "trace", str(path), "--rcpt", f"disputes@{DOMAIN}",
                 "--rcpt", f"case+aaaa-m-{'b' * 16}@{DOMAIN}", "--from", ""], clock=gateway.clock) == 0
    out = capsys.readouterr().out
    assert "bounce: multipart/report" in out and "5.1.1" in out
    assert "550 refused (bad signature)" in out
    assert "report (userunknown) for addresses we did not write to" in out


def test_quarantine_keeps_the_message_tells_staff_and_can_retry(sqlite_backend, make_gateway, tmp_path, capsys,
                                                                monkeypatch):
    gateway = make_gateway(sqlite_backend, worker_settings={"inbound_max_attempts": 1})
    original = pipeline.dispatch

    def broken(step, match):
        raise RuntimeError("simulated fault in processing")

    monkeypatch.setattr(pipeline, "dispatch", broken)
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    config = _config(gateway, tmp_path)
    capsys.readouterr()
    assert main(["--config", config, "quarantine", "list", "--json"], clock=gateway.clock) == 0
    listed = json.loads(capsys.readouterr().out)["messages"]
    assert listed[0]["status"] == "quarantined" and "simulated fault" in listed[0]["error"]
    assert main(["--config", config, "quarantine", "show", str(listed[0]["id"])], clock=gateway.clock) == 0
    shown = capsys.readouterr().out
    assert "raw: " in shown and "TX-1001" in shown
    monkeypatch.setattr(pipeline, "dispatch", original)
    assert main(["--config", config, "quarantine", "retry", str(listed[0]["id"])], clock=gateway.clock) == 0
    with gateway.runtime.database.unit_of_work() as db:
        assert db.get(Inbound, listed[0]["id"]).status == "processed"
        assert db.scalar(select(func.count()).select_from(Case)) == 1


def test_outbox_list_and_retry_of_a_failed_delivery(sqlite_backend, make_gateway, sink, tmp_path, capsys):
    gateway = make_gateway(sqlite_backend)
    # a dead address: a disabled mailbox (5.2.1) would be trouble, retried on the [bounces] schedule
    sink.handler.rcpt_answers["staff@ops.test"] = ["550 5.1.1 <staff@ops.test>: Recipient address rejected"]
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    config = _config(gateway, tmp_path)
    capsys.readouterr()
    assert main(["--config", config, "outbox", "list", "--status", "failed", "--json"], clock=gateway.clock) == 0
    failed = json.loads(capsys.readouterr().out)
    assert len(failed) == 1 and failed[0]["recipient"] == "staff@ops.test" and failed[0]["smtp_code"] == 550
    sink.handler.rcpt_answers.clear()
    assert main(["--config", config, "outbox", "retry", str(failed[0]["id"])], clock=gateway.clock) == 0
    assert len(sink.to("staff@ops.test")) == 1


def test_health_command_fails_when_the_smarthost_is_down(sqlite_backend, make_gateway, tmp_path, capsys):
    gateway = make_gateway(sqlite_backend)
    gateway.sweep()  # a scheduler has run
    config = _config(gateway, tmp_path)
    assert main(["--config", config, "health"], clock=gateway.clock) == 0
    assert "ok   smarthost" in capsys.readouterr().out
    text = (tmp_path / "admin.toml").read_text().replace(f"port = {gateway.settings.outbound.smtp.port}",
                                                         f"port = {free_port()}")
    (tmp_path / "admin.toml").write_text(text)
    assert main(["--config", config, "health"], clock=gateway.clock) == 1
    assert "FAIL smarthost" in capsys.readouterr().out


def test_metrics_and_health_endpoints(sqlite_backend, make_gateway, tmp_path):
    port = free_port()
    gateway = make_gateway(sqlite_backend, metrics={"port": port})
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    gateway.sweep()  # a scheduler has run
    server = metrics.serve(gateway.runtime)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'dispute_gateway_smtp_answers_total{result="accepted"}' in body
        assert 'dispute_gateway_outbox_messages{kind="relay",status="sent"} 1.0' in body
        assert 'dispute_gateway_cases{state="awaiting_merchant"} 1.0' in body
        for name in ("dispute_gateway_quarantine_messages", "dispute_gateway_outbox_oldest_due_seconds",
                     "dispute_gateway_timer_lag_seconds", "dispute_gateway_escalations"):
            assert name in body
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
        assert health["ok"] and [c["name"] for c in health["checks"]] == [
            "database", "broker", "smarthost", "journal", "outbox", "retrying", "inbound", "workers", "scheduler"]
    finally:
        server.shutdown()
        server.server_close()
