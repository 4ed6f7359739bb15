"""End to end through a real Postfix (the MTA in front of the gateway and its smarthost)
and a real Dovecot (the merchant's and the customer's mailboxes, read over IMAP).

Postfix hands *@disputes.test to the gateway on this run's gateway port, delivers *@merchant.test
users alice/bob/inbox to Maildirs that Dovecot serves, and bounces any other
@merchant.test address with a real DSN to the envelope sender (our VERP address)."""

from __future__ import annotations

import email
import smtplib
import subprocess
import time
from email.policy import compat32
from pathlib import Path

import pytest
from imapclient import IMAPClient

from gateway import reports
from tests import mailservers
from tests.harness import DOMAIN, build_mail, tx_date

pytestmark = pytest.mark.mailserver
REPO = Path(__file__).resolve().parents[2]
POSTFIX = ("127.0.0.1", mailservers.POSTFIX_PORT)
GATEWAY_PORT = mailservers.GATEWAY_PORT  # where start-postfix.sh relays *@disputes.test
CUSTOMER = "bob@merchant.test"
MERCHANT = "alice@merchant.test"
MERCHANTS = "merchant_id,name,support_email,locale\nshopA,Alice Shop,alice@merchant.test,en\n" \
            "ghost,Ghost Shop,nobody-here@merchant.test,en\n"


def _transactions(now) -> str:
    day = tx_date(now).date()
    return ("reference,merchant_id,customer_email,customer_name,amount,currency,transaction_date\n"
            f"PF-1001,shopA,bob@merchant.test,Bob Buyer,20,EUR,{day}\n"
            f"PF-2002,ghost,bob@merchant.test,Bob Buyer,35,EUR,{day}\n")


@pytest.fixture(scope="module")
def mailservers_ready(postfix, dovecot):
    subprocess.run(["postsuper", "-c", str(mailservers.POSTFIX_CONFIG_DIR), "-d", "ALL"], capture_output=True)
    for user in (CUSTOMER, MERCHANT):
        _imap(user, lambda c: (c.select_folder("INBOX"), c.delete_messages(c.search("ALL")), c.expunge()))
    yield


def _imap(user, action):
    with IMAPClient("127.0.0.1", port=mailservers.IMAP_PORT, ssl=False, timeout=10) as client:
        client.login(user, "password")
        return action(client)


def _mailbox(user) -> list[email.message.Message]:
    def fetch(client):
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return [email.message_from_bytes(data[uid][b"BODY[]"], policy=compat32) for uid in sorted(data)]
    return _imap(user, fetch)


def _wait_mailbox(user, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = _mailbox(user)
        if len(messages) >= count:
            return messages
        time.sleep(0.3)
    raise AssertionError(f"{user} has {len(_mailbox(user))} messages, expected {count}")


def _wait_for_text(user, needle, timeout=30):
    """The mailboxes are shared by this module's tests, so wait for the message itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in _mailbox(user) if needle in _text(m)]
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{user} never received a message saying {needle!r}")


def _text(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def _submit(sender, rcpt, raw):
    with smtplib.SMTP(*POSTFIX, timeout=30) as client:
        client.sendmail(sender, [rcpt], raw)


def test_dispute_round_trip_through_postfix_and_dovecot(mailservers_ready, sqlite_backend, make_gateway, tmp_path):
    gateway = make_gateway(sqlite_backend, load=False,
                           ingress={"smtp": {"host": "127.0.0.1", "port": GATEWAY_PORT, "hostname": "gw.test"}},
                           outbound={"smtp": {"host": POSTFIX[0], "port": POSTFIX[1], "timeout_seconds": 10}})
    gateway.load(tmp_path, merchants=MERCHANTS, transactions=_transactions(gateway.clock.now()))
    _submit(CUSTOMER, f"delivery@{DOMAIN}", build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}",
                                                        subject="PF-1001 never arrived", body="Where is PF-1001?"))
    merchant_mail = _wait_mailbox(MERCHANT, 2)
    relay = next(m for m in merchant_mail if "Auto-Submitted" not in m)
    assert "Where is PF-1001?" in _text(relay) and CUSTOMER not in relay.as_string()
    case_address = email.utils.parseaddr(relay["From"])[1]
    reply = build_mail(sender=MERCHANT, to=case_address, subject="Re: " + relay["Subject"],
                       body="Shipped again today.", in_reply_to=relay["Message-ID"])
    _submit(MERCHANT, case_address, reply)
    customer_mail = _wait_mailbox(CUSTOMER, 2)
    answer = customer_mail[-1]
    assert "Shipped again today." in _text(answer) and MERCHANT not in answer.as_string()
    assert answer["In-Reply-To"] == customer_mail[0]["Message-ID"]


def test_unknown_merchant_address_escalates_through_a_real_dsn(mailservers_ready, sqlite_backend, make_gateway, tmp_path):
    gateway = make_gateway(sqlite_backend, load=False,
                           ingress={"smtp": {"host": "127.0.0.1", "port": GATEWAY_PORT, "hostname": "gw.test"}},
                           outbound={"smtp": {"host": POSTFIX[0], "port": POSTFIX[1], "timeout_seconds": 10}})
    gateway.load(tmp_path, merchants=MERCHANTS, transactions=_transactions(gateway.clock.now()))
    _submit(CUSTOMER, f"delivery@{DOMAIN}", build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}",
                                                        subject="PF-2002 missing", body="PF-2002 never came."))
    deadline = time.monotonic() + 40
    case = None
    while time.monotonic() < deadline:
        with gateway.runtime.database.unit_of_work() as db:
            cases = reports.list_cases(db)
            case = reports.show_case(db, cases[0]["reference"]) if cases else None
        if case and case["escalated"]:
            break
        time.sleep(0.3)
    assert case and case["escalated"] and case["merchant_unreachable"]
    assert any(b["status"] == "5.1.1" and b["detected_by"].startswith("verp") for b in case["bounces"])
    told = _wait_for_text(CUSTOMER, "does not work")
    assert "PF-2002" in told[0]["Subject"] + _text(told[0])


def test_postfix_refuses_forged_case_addresses_at_rcpt_time(mailservers_ready, sqlite_backend, make_gateway, tmp_path):
    """The README's Postfix set-up: reject_unverified_recipient asks the gateway at RCPT time."""
    gateway = make_gateway(sqlite_backend, load=False,
                           ingress={"smtp": {"host": "127.0.0.1", "port": GATEWAY_PORT, "hostname": "gw.test"}},
                           outbound={"smtp": {"host": POSTFIX[0], "port": POSTFIX[1], "timeout_seconds": 10}})
    gateway.load(tmp_path, merchants=MERCHANTS, transactions=_transactions(gateway.clock.now()))
    mailservers.start("postfix", POSTFIX_VERIFY_GATEWAY="yes")
    try:
        forged = f"case+abcdefgh-m-{'a' * 16}@{DOMAIN}"
        with smtplib.SMTP(*POSTFIX, timeout=60) as client:
            client.ehlo()
            client.mail("someone@elsewhere.test")
            code, text = client.rcpt(forged)
            assert code == 550, (code, text)
            client.rset()
            client.mail("someone@elsewhere.test")
            code, _ = client.rcpt(f"delivery@{DOMAIN}")
            assert code == 250
    finally:
        mailservers.start("postfix")
