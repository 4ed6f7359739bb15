"""Hostile input from a stranger cannot stop intake: it gets a defined answer in bounded
time, while genuine mail keeps being accepted."""

from __future__ import annotations

import smtplib
import threading
import time

from sqlalchemy import select

from gateway import reports
from gateway.models import Inbound
from tests.harness import CUSTOMER, DOMAIN, MERCHANT, STAFF, build_mail

STRANGER = "stranger@evil.test"


def _raw(subject: bytes, content_type: bytes, body: bytes, sender: str = STRANGER) -> bytes:
    return (b"From: " + sender.encode() + b"\r\nTo: delivery@" + DOMAIN.encode() + b"\r\nSubject: " + subject
            + b"\r\nMessage-ID: <%d@evil.test>\r\nMIME-Version: 1.0\r\nContent-Type: " % time.monotonic_ns()
            + content_type + b"\r\n\r\n" + body)


def test_a_worst_case_message_does_not_stall_genuine_complaints(sqlite_backend, make_gateway, sink):
    gateway = make_gateway(sqlite_backend, max_message_bytes=10_000_000)
    body = b"\r\n".join([b"</" * 38] * 54_000)  # 4.1 MB of '</': 13 minutes in html.parser alone, before
    hostile = _raw(b"hello", b"text/html; charset=utf-8", body)
    answers: list[tuple[int, float]] = []
    lock = threading.Lock()

    def complain(n: int) -> None:
        sender = f"buyer{n}@customer.test"
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
            refused = client.sendmail(sender, [f"delivery@{DOMAIN}"],
                                      build_mail(sender=sender, to=f"delivery@{DOMAIN}", subject="TX-1001", body="x"))
        with lock:
            answers.append((0 if not refused else 1, time.monotonic() - started))

    gateway.send(hostile, to=f"delivery@{DOMAIN}", sender=STRANGER)
    threads = [threading.Thread(target=complain, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(60)
    assert len(answers) == 12 and all(code == 0 for code, _ in answers)  # every one got 250
    assert max(seconds for _, seconds in answers) < 10
    gateway.settle(timeout=60)
    with gateway.runtime.database.unit_of_work() as db:
        statuses = {row.status for row in db.scalars(select(Inbound))}
    assert statuses == {"processed"}  # the hostile one too: answered (or not) like any stranger's mail


def test_mime_nested_a_thousand_deep_opens_the_case_without_its_excess(backend, make_gateway, sink):
    gateway = make_gateway(backend)
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n) for n in range(1000))
    body = nested + b"Content-Type: text/plain\r\n\r\ndeep\r\n" + b"".join(b"--b%d--\r\n" % n
                                                                          for n in reversed(range(1000)))
    raw = (f"From: {CUSTOMER}\r\nTo: delivery@{DOMAIN}\r\nSubject: TX-1001 never arrived\r\nMIME-Version: 1.0\r\n"
           ).encode() + body
    gateway.send(raw, to=f"delivery@{DOMAIN}")
    gateway.settle()
    with gateway.runtime.database.unit_of_work() as db:
        inbound = db.scalar(select(Inbound))
        case = reports.show_case(db, reports.list_cases(db)[0]["reference"])
    assert inbound.status == "processed" and "over the limits" in inbound.disposition
    limited = [e for e in case["events"] if e["kind"] == "message_limited"]
    assert limited and "nested deeper than 20" in limited[0]["detail"]["notes"][0]
    assert sink.to(MERCHANT)  # the complaint reached the merchant
    assert not any("need" in r.header("Subject") for r in sink.to(STAFF[0]))  # no quarantine report


def test_control_characters_in_a_subject_never_reach_a_header_we_write(backend, make_gateway, sink):
    gateway = make_gateway(backend)
    raw = _raw(b"TX-1001 \x00never\x1b[31m arrived\x07", b"text/plain; charset=utf-8", b"TX-1001 lost\r\n\x00\r\n",
               sender=CUSTOMER)
    gateway.send(raw, to=f"delivery@{DOMAIN}")
    gateway.settle()
    with gateway.runtime.database.unit_of_work() as db:
        case = reports.list_cases(db)[0]
    assert case["subject"] == "TX-1001 never [31m arrived"
    assert len(sink.received) >= 4
    for received in sink.received:
        head = received.raw.split(b"\r\n\r\n", 1)[0]
        assert not any(byte < 32 and byte not in (9, 10, 13) for byte in head), head
