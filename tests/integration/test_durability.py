"""Durability: 250 only after commit, 451 when the database is down, 552 when too large,
duplicates processed once, lost queue messages repaired by the sweep without duplicates,
smarthost 4xx retried and 5xx recorded as a permanent failure."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.db import Database
from gateway.ingress import smtp as smtp_ingress
from gateway.models import Bounce, Inbound, Outbox
from tests.harness import CUSTOMER, DOMAIN, MERCHANT, build_mail, free_port, settings_for


def _count(gateway, model, *where):
    with gateway.runtime.database.unit_of_work() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def test_same_mail_delivered_twice_is_processed_once(gateway, sink):
    raw = build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 lost", body="TX-1001 lost",
                     message_id="<dup-1@customer.test>")
    gateway.send(raw, to=f"delivery@{DOMAIN}")
    sink.wait_count(5)
    # the MTA retries after a lost 250 (and adds a Received header on the way)
    gateway.send(b"Received: from mx.customer.test by relay; Thu, 26 Nov 2026 10:00:05 +0100\r\n" + raw,
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    assert _count(gateway, Inbound) == 1
    assert len(sink.received) == 5


def test_another_message_reusing_a_message_id_is_processed_not_dropped(gateway, sink):
    first = build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 lost", body="TX-1001 lost",
                       message_id="<reused@customer.test>")
    gateway.send(first, to=f"delivery@{DOMAIN}")
    gateway.settle()
    second = build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1002 broken",
                        body="And TX-1002 came broken.", message_id="<reused@customer.test>")
    gateway.send(second, to=f"delivery@{DOMAIN}")
    gateway.settle()
    assert _count(gateway, Inbound) == 2
    assert _count(gateway, Inbound, Inbound.status == "processed") == 2
    assert any("came broken" in r.text() for r in sink.to("sav@boutique.test"))  # TX-1002's merchant heard


def test_a_message_without_message_id_delivered_twice_is_processed_once(gateway, sink):
    raw = (f"From: {CUSTOMER}\r\nTo: delivery@{DOMAIN}\r\nSubject: TX-1001 lost\r\n"
           "Date: Thu, 26 Nov 2026 10:00:00 +0100\r\n\r\nTX-1001 never came.\r\n").encode()
    gateway.send(b"Received: from mx1.customer.test by mx.disputes.test; Thu, 26 Nov 2026 10:00:01 +0100\r\n" + raw,
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    delivered = len(sink.received)
    gateway.send(b"Received: from mx2.customer.test by mx.disputes.test; Thu, 26 Nov 2026 10:09:01 +0100\r\n" + raw,
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    assert _count(gateway, Inbound) == 1 and len(sink.received) == delivered


def test_duplicate_is_answered_250_so_the_mta_stops(gateway, sink):
    raw = build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001")
    gateway.send(raw, to=f"delivery@{DOMAIN}")
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo()
        client.mail(CUSTOMER)
        client.rcpt(f"delivery@{DOMAIN}")
        code, text = client.data(raw)
    assert code == 250 and b"already" in text


def test_database_down_at_data_answers_451_and_keeps_nothing_half_done(tmp_path, sqlite_backend, clock):
    settings = settings_for(tmp_path, sqlite_backend, None)
    down = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")  # nothing listens there
    controller = smtp_ingress.start(settings, down, clock, lambda inbound_id: None)
    try:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            with smtplib.SMTP("127.0.0.1", settings.smtp_ingress.port) as client:
                client.sendmail(CUSTOMER, [f"delivery@{DOMAIN}"], build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}"))
        assert refused.value.smtp_code == 451
    finally:
        controller.stop()
        down.dispose()


def test_oversize_message_gets_552_whether_or_not_size_was_declared(backend, make_gateway):
    gateway = make_gateway(backend, max_message_bytes=4096)
    big = build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", body="x" * 60 + ("\n" + "y" * 70) * 200)
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        assert b"SIZE 4096" in client.ehlo()[1]
        code, _ = client.mail(CUSTOMER, ["SIZE=%d" % len(big)])
        assert code == 552
        client.rset()
        client.mail(CUSTOMER)  # no SIZE declared: read to the end, then refused
        client.rcpt(f"delivery@{DOMAIN}")
        code, _ = client.data(big)
        assert code == 552
    assert _count(gateway, Inbound) == 0


def test_lost_queue_messages_are_repaired_by_the_sweep_without_duplicates(backend, make_gateway, sink, clock):
    gateway = make_gateway(backend, workers=False)
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.runtime.broker.flush_all()  # the queue is lost (Redis flushed, worker killed)
    assert gateway.sweep().inbound == 0  # still within its lease: nothing to repair yet
    with gateway.runtime.database.unit_of_work() as db:
        inbound_id = db.scalar(select(Inbound.id))
    gateway.runtime.process_inbound.fn(inbound_id)  # a worker commits the outbox rows ...
    gateway.runtime.broker.flush_all()  # ... and is killed before any deliver job runs
    assert sink.received == []
    gateway.worker = gateway.runtime.start_worker(2)
    clock.set(clock.now() + timedelta(seconds=61))
    report = gateway.sweep()
    assert report.outbox == 5
    sink.wait_count(5)
    gateway.sweep()  # a second scheduler pass finds nothing left
    for outbox_id in range(1, 6):
        gateway.runtime.deliver.send(outbox_id)  # and duplicate queue messages send nothing twice
    gateway.settle()
    assert len(sink.received) == 5
    assert _count(gateway, Outbox, Outbox.status == "sent") == 5


def test_lost_inbound_job_is_processed_after_its_lease(backend, make_gateway, sink, clock):
    gateway = make_gateway(backend, workers=False)
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.runtime.broker.flush_all()
    gateway.worker = gateway.runtime.start_worker(2)
    clock.set(clock.now() + timedelta(seconds=61))
    assert gateway.sweep().inbound == 1
    sink.wait_count(5)
    gateway.settle()
    assert len(sink.received) == 5


def test_smarthost_4xx_is_retried_then_delivered(gateway, sink):
    sink.handler.rcpt_answers[MERCHANT] = ["451 4.3.0 greylisted, try later", "250 OK"]
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    sink.wait(lambda got: len(sink.to(MERCHANT)) == 2, timeout=20)
    gateway.settle()  # the sink has the mail a moment before the worker records the 250
    with gateway.runtime.database.unit_of_work() as db:
        retried = db.scalars(select(Outbox).where(Outbox.recipient == MERCHANT, Outbox.attempts > 1)).all()
    assert retried and all(row.status == "sent" for row in retried)


def test_smarthost_5xx_is_a_permanent_failure_recorded_on_the_case(gateway, sink):
    sink.handler.rcpt_answers[MERCHANT] = ["550 5.1.1 <support@shop.test>: user unknown"]
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    assert _count(gateway, Outbox, Outbox.recipient == MERCHANT, Outbox.status == "failed") == 2
    assert _count(gateway, Bounce, Bounce.recipient == MERCHANT, Bounce.detected_by == "smtp") == 2


def test_a_temporary_failure_lasting_24_hours_counts_as_a_hard_bounce(backend, make_gateway, sink, clock):
    gateway = make_gateway(backend, outbound={"smtp": {"host": "127.0.0.1", "port": sink.port},
                                                           "retry_base_seconds": 3600, "retry_max_seconds": 3600,
                                                           "max_attempts": 50})
    sink.handler.rcpt_answers[MERCHANT] = ["451 4.2.0 mailbox busy, try later"]
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    assert _count(gateway, Outbox, Outbox.recipient == MERCHANT, Outbox.status == "pending") == 2
    clock.set(clock.now() + timedelta(hours=25))
    gateway.sweep()  # the retries are due: still 451, now for more than 24 hours
    gateway.settle()
    assert _count(gateway, Outbox, Outbox.recipient == MERCHANT, Outbox.status == "failed") == 2
    from gateway import reports

    with gateway.runtime.database.unit_of_work() as db:
        case = reports.show_case(db, reports.list_cases(db)[0]["reference"])
    assert case["escalated"] and case["merchant_unreachable"]
    assert "24 hours" in case["bounces"][0]["diagnostic"]


def test_the_relay_reconnects_at_once_when_the_smarthost_closed_its_connection():
    from aiosmtpd.controller import Controller

    from gateway.transport import SmtpTransport
    from gateway.settings import SmtpOutboundSettings
    from tests.harness import SinkHandler

    port = free_port()
    handler = SinkHandler()
    server = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    server.start()
    relay = SmtpTransport(SmtpOutboundSettings(host="127.0.0.1", port=port, timeout_seconds=5))
    raw = build_mail(sender="a@d.test", to="b@e.test")
    relay.send("bounce+x@d.test", "b@e.test", raw)
    server.stop()  # the smarthost restarts: the kept connection is dead
    server = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    server.start()
    try:
        relay.send("bounce+x@d.test", "b@e.test", raw)
    finally:
        server.stop()
    assert len(handler.received) == 2


def test_a_smarthost_outage_is_never_a_recipient_bounce(backend, make_gateway, sink, clock):
    gateway = make_gateway(backend, load=True,
                           outbound={"smtp": {"host": "127.0.0.1", "port": free_port(), "timeout_seconds": 2},
                                     "retry_base_seconds": 60, "retry_max_seconds": 60, "max_attempts": 2})
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001"),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    for hours in (2, 30):  # past max_attempts and past the 24-hour rule
        clock.set(clock.now() + timedelta(hours=hours))
        gateway.sweep()
        gateway.settle()
    from gateway import reports

    with gateway.runtime.database.unit_of_work() as db:
        case = reports.show_case(db, reports.list_cases(db)[0]["reference"])
    assert not case["escalated"] and not case["merchant_unreachable"] and case["bounces"] == []
    assert _count(gateway, Outbox, Outbox.status == "failed") == 0
