"""Delivery reports over real SMTP, on both backends: each reason has its consequence.

A full mailbox never flags the merchant: staff are told once, the message is retried, and
only trouble that lasts escalates; a dead address flags at once; complaints and success
reports only add to the record; the smarthost refusing one message (a virus, the size)
is that message's problem; staff can clear a flag. Each runs with our own detectors alone
and, where libsisimai-perl is installed, joined with Sisimai ([bounces] analyser)."""

from __future__ import annotations

import smtplib
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import addresses, reports, sisimai
from gateway.cli import main
from gateway.models import Outbox
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF, build_mail, write_config

MAIL = Path(__file__).resolve().parents[1] / "mail"
CORPUS = MAIL / "corpus" / "reports"
# The EICAR anti-virus test file: every virus filter refuses a message that carries it.
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(scope="module", params=["none", "sisimai"])
def analyser(request) -> str:
    if request.param == "sisimai" and sisimai.installed() is None:
        pytest.skip("libsisimai-perl is not installed")
    return request.param


@pytest.fixture
def gateway(backend, make_gateway, analyser):
    return make_gateway(backend, bounces={"analyser": analyser})


def _open(gateway, sender=CUSTOMER, reference="TX-1001"):
    gateway.send(build_mail(sender=sender, to=f"delivery@{DOMAIN}", subject=f"{reference} problem",
                            body=f"My parcel {reference} never arrived."), to=f"delivery@{DOMAIN}", sender=sender)
    gateway.settle()


def _cases(gateway):
    with gateway.runtime.database.unit_of_work() as db:
        return [reports.show_case(db, c["reference"]) for c in reports.list_cases(db)]


def _merchant(gateway):
    with gateway.runtime.database.unit_of_work() as db:
        return reports.show_merchant(db, "shop1")


def _rows_to(gateway, recipient):
    with gateway.runtime.database.unit_of_work() as db:
        return db.scalars(select(Outbox).where(Outbox.recipient == recipient).order_by(Outbox.id)).all()


def _verp(row):
    return addresses.bounce_address(row.verp_token, domain=DOMAIN, keys=KEYS)


def _report(sample: Path, *, verp: str, recipient: str = MERCHANT, status: bytes | None = None,
            diagnostic: bytes | None = None) -> bytes:
    """A real Postfix report, re-addressed to our VERP address and the merchant."""
    raw = sample.read_bytes().replace(b"\r\n", b"\n")
    raw = (raw.replace(b"nobody@merchant.test", recipient.encode()).replace(b"support@merchant.test", recipient.encode())
           .replace(b"bounces+abc123@disputes.test", verp.encode()))
    if status:
        raw = raw.replace(b"Status: 5.1.1", b"Status: " + status)
    if diagnostic:
        raw = raw.replace(b'Diagnostic-Code: X-Postfix; unknown user: "' + recipient.encode() + b'"',
                          b"Diagnostic-Code: " + diagnostic)
        raw = raw.replace(b'unknown user: "' + recipient.encode() + b'"', diagnostic)
    return raw


def _mailbox_full(row, serial: int = 1) -> bytes:
    """Each report is a new message (the same bytes twice would be one delivery, processed once)."""
    raw = _report(MAIL / "postfix_dsn_unknown_user.eml", verp=_verp(row), status=b"5.2.2",
                  diagnostic=b"smtp; 552 5.2.2 <support@shop.test>: Mailbox full, quota exceeded")
    return raw.replace(b"<20261126032211.1FA3A2154CD@mx.mailtest.test>",
                       f"<20261126032211.{serial}.{row.id}@mx.mailtest.test>".encode())


def _send(gateway, raw: bytes, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:  # SMTP wants CR LF line ends
        client.sendmail("<>", [to], raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    gateway.settle()


def _told(sink, words: str) -> list:
    return [r for r in sink.to(STAFF[0]) if words in r.text().split("\n", 1)[0]]


def test_a_full_mailbox_tells_staff_once_retries_and_never_flags_the_merchant(gateway, sink, clock):
    _open(gateway)
    notice_row, relay_row = _rows_to(gateway, MERCHANT)[-2:]
    _send(gateway, _mailbox_full(relay_row), _verp(relay_row))
    _send(gateway, _mailbox_full(notice_row), _verp(notice_row))
    case = _cases(gateway)[0]
    assert not case["escalated"] and not case["merchant_unreachable"] and case["state"] == "awaiting_merchant"
    assert {(b["kind"], b["reason"]) for b in case["bounces"]} == {("trouble", "mailboxfull")}
    assert [e["kind"] for e in case["events"]].count("delivery_problem") == 2
    told = _told(sink, "not getting through to the merchant")
    assert len(told) == 1  # once per merchant per day, however many reports
    assert "the mailbox is full" in told[0].text() and "552 5.2.2" in told[0].text()
    merchant = _merchant(gateway)
    assert merchant["address_status"] == "ok" and merchant["trouble_reports"] == 2
    retried = {r.id: r for r in _rows_to(gateway, MERCHANT)}[relay_row.id]
    assert retried.status == "pending" and retried.delivery_problem == "mailboxfull"
    assert timedelta(minutes=59) < retried.next_attempt_at - clock.now() <= timedelta(minutes=60)

    before = len(sink.to(MERCHANT))
    clock.advance(timedelta(minutes=61))
    gateway.sweep()
    gateway.settle()
    again = sink.to(MERCHANT)[before:]
    assert relay_row.message_id in [r.header("Message-ID") for r in again]  # the same message, sent again


def test_the_same_trouble_for_24_hours_makes_the_merchant_unreachable(gateway, sink, clock):
    _open(gateway)
    _open(gateway, sender="dave@other.test", reference="TX-2001")  # a second open case of the merchant
    row = _rows_to(gateway, MERCHANT)[-1]
    _send(gateway, _mailbox_full(row), _verp(row))
    assert not any(c["escalated"] for c in _cases(gateway))
    clock.advance(timedelta(hours=25))
    gateway.sweep()
    gateway.settle()  # the retry goes out, and the mailbox is still full
    _send(gateway, _mailbox_full(row, serial=2), _verp(row))
    cases = _cases(gateway)
    assert all(c["escalated"] and c["merchant_unreachable"] and c["state"] == "with_staff" for c in cases)
    assert _merchant(gateway)["address_status"] == "ok" and _merchant(gateway)["unreachable_at"]
    escalations = [r for r in sink.to(STAFF[0]) if r.text().startswith("Escalated")
                   or "now with staff" in r.text()]
    assert escalations and any("not been getting through" in r.text() for r in escalations)


def test_a_user_unknown_report_flags_the_merchant_at_once(gateway, sink):
    _open(gateway)
    row = _rows_to(gateway, MERCHANT)[-1]
    _send(gateway, _report(MAIL / "postfix_dsn_unknown_user.eml", verp=_verp(row)), _verp(row))
    case = _cases(gateway)[0]
    assert case["escalated"] and case["merchant_unreachable"]
    assert (case["bounces"][0]["kind"], case["bounces"][0]["reason"]) == ("dead", "userunknown")
    assert _merchant(gateway)["address_status"] == "invalid"


def test_a_success_dsn_is_delivery_evidence_and_nothing_else(gateway, sink):
    _open(gateway)
    row = _rows_to(gateway, MERCHANT)[-1]
    mail_before = len(sink.received)
    _send(gateway, _report(MAIL / "postfix_dsn_success_relayed.eml", verp=_verp(row)), _verp(row))
    case = _cases(gateway)[0]
    assert not case["escalated"] and case["bounces"] == [] and len(sink.received) == mail_before
    confirmed = [e for e in case["events"] if e["kind"] == "delivery_confirmed"]
    assert confirmed and confirmed[0]["detail"]["remote_mta"] == "dns; mx.merchant.test"
    delivered = {r.id: r for r in _rows_to(gateway, MERCHANT)}[row.id]
    assert delivered.delivered_at is not None and delivered.delivery_report["reason"] == "delivered"


def test_an_abuse_complaint_is_recorded_and_told_never_a_bounce(gateway, sink):
    _open(gateway)
    row = _rows_to(gateway, MERCHANT)[-1]
    _send(gateway, (CORPUS / "sisimai-bsd-arf-03.eml").read_bytes(), _verp(row))
    case = _cases(gateway)[0]
    assert not case["escalated"] and case["bounces"] == [] and _merchant(gateway)["address_status"] == "ok"
    assert any(e["kind"] == "complaint_received" for e in case["events"])
    assert len(_told(sink, "complaint about our mail from the merchant")) == 1


def _customer_writes(gateway, case, *, body: str, attachment: bytes | None = None) -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = CUSTOMER, "Re: TX-1001 problem"
    to = addresses.case_address(case["reference"].lower(), "c", domain=DOMAIN, keys=KEYS)
    message["To"] = to
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="image", subtype="jpeg", filename="parcel.jpg")
    gateway.send(message.as_bytes(policy=SMTP), to=to)
    gateway.settle()


def test_a_virus_or_an_oversized_photo_never_gets_the_merchant_flagged(backend, make_gateway, sink, analyser):
    """As an attacker would: the smarthost refuses a 474-byte EICAR message and an 11 MB photo."""
    gateway = make_gateway(backend, max_message_bytes=20_000_000, bounces={"analyser": analyser})
    _open(gateway)
    _open(gateway, sender="dave@other.test", reference="TX-2001")
    sink.handler.data_answers.append((lambda raw: b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in raw,
                                      "554 5.7.1 Message rejected: virus found (Eicar-Signature)"))
    sink.handler.data_answers.append((lambda raw: len(raw) > 10_000_000, "552 5.3.4 Message size exceeds fixed limit"))
    carol = next(c for c in _cases(gateway) if c["customer_email"] == CUSTOMER)
    _customer_writes(gateway, carol, body=EICAR)
    _customer_writes(gateway, carol, body="The photo of the box.", attachment=b"\xff\xd8\xff" + bytes(11 * 1024 * 1024))
    cases = _cases(gateway)
    assert not any(c["escalated"] or c["merchant_unreachable"] for c in cases)
    assert _merchant(gateway)["address_status"] == "ok" and _merchant(gateway)["delivery_trouble"] is None
    carol = next(c for c in cases if c["customer_email"] == CUSTOMER)
    assert {(b["kind"], b["reason"]) for b in carol["bounces"]} == {("message", "virusdetected"),
                                                                    ("message", "mesgtoobig")}
    refused = _told(sink, "a message was refused by the merchant's mail server")
    assert len(refused) == 1 and "taken for a virus" in refused[0].text()


def test_staff_can_clear_a_flag(gateway, sink, tmp_path):
    _open(gateway)
    row = _rows_to(gateway, MERCHANT)[-1]
    _send(gateway, _report(MAIL / "postfix_dsn_unknown_user.eml", verp=_verp(row)), _verp(row))
    assert _merchant(gateway)["address_status"] == "invalid"
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    assert main(["--config", str(config), "merchants", "clear", "shop1", "--note", "checked by phone"],
                clock=gateway.clock) == 0
    assert _merchant(gateway)["address_status"] == "ok"
    case = _cases(gateway)[0]
    assert not case["merchant_unreachable"]
    cleared = [e for e in case["events"] if e["kind"] == "merchant_address_cleared"]
    assert cleared and cleared[0]["detail"]["note"] == "checked by phone"
    assert main(["--config", str(config), "merchants", "clear", "nobody"], clock=gateway.clock) == 1


def test_a_report_to_the_intake_address_naming_only_the_rewritten_mailbox_still_finds_what_we_sent(gateway, sink):
    """A report that did not come back to the VERP address, whose Original-Recipient is a
    forwarder's alias and whose Final-Recipient is the merchant's address we wrote to: it
    quotes our Message-ID, so it is placed on that message."""
    _open(gateway)
    row = _rows_to(gateway, MERCHANT)[-1]
    raw = _report(MAIL / "postfix_dsn_unknown_user.eml", verp=f"delivery@{DOMAIN}")
    raw = raw.replace(b"Original-Recipient: rfc822;" + MERCHANT.encode(), b"Original-Recipient: rfc822;shop@forwarder.test")
    raw = raw.replace(b"<179566333106.13862.13762420898156194513@disputes.test>", row.message_id.encode())
    _send(gateway, raw, f"delivery@{DOMAIN}")
    case = _cases(gateway)[0]
    assert (case["bounces"][0]["kind"], case["bounces"][0]["reason"]) == ("dead", "userunknown")
