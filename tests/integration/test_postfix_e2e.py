"""End to end through a real Postfix (the MTA in front of the gateway and its smarthost)
and a real Dovecot (the merchant's and the customer's mailboxes, read over IMAP).

The Postfix is configured the way the README tells an administrator: a site of its own
(scripts/start-postfix.sh), then deploy/postfix/install.sh run on it, exactly as shipped.
It hands *@disputes.test to the gateway on this run's gateway port (asking the gateway at
RCPT time about case and bounce addresses), delivers *@merchant.test users
alice/bob/inbox to Maildirs that Dovecot serves, and bounces any other @merchant.test
address with a real DSN to the envelope sender (our VERP address)."""

from __future__ import annotations

import email
import smtplib
import subprocess
import time
from email.policy import compat32
from pathlib import Path

import dkim as dkimpy
import pytest
from imapclient import IMAPClient

from gateway import reports
from gateway.mail import dkim
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
    """Relays leave DKIM-signed and still verify in the recipient's mailbox, after Postfix
    and Dovecot added their headers."""
    key = dkim.generate_private_key()
    dkim.write_private_key(tmp_path / "dg1.pem", key)
    gateway = make_gateway(sqlite_backend, load=False,
                           ingress={"smtp": {"host": "127.0.0.1", "port": GATEWAY_PORT, "hostname": "gw.test"}},
                           outbound={"smtp": {"host": POSTFIX[0], "port": POSTFIX[1], "timeout_seconds": 10},
                                     "dkim": {"selector": "dg1", "key_file": str(tmp_path / "dg1.pem")}})
    gateway.load(tmp_path, merchants=MERCHANTS, transactions=_transactions(gateway.clock.now()))
    _submit(CUSTOMER, f"delivery@{DOMAIN}", build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}",
                                                        subject="PF-1001 never arrived", body="Where is PF-1001?"))
    merchant_mail = _wait_mailbox(MERCHANT, 2)
    relay = next(m for m in merchant_mail if "Auto-Submitted" not in m)
    assert "Where is PF-1001?" in _text(relay) and CUSTOMER not in relay.as_string()
    record = "".join(dkim.txt_strings(dkim.public_key_value(key))).encode()
    for received in merchant_mail:  # the relay and the merchant's notice
        raw = received.as_bytes()
        assert raw.count(b"DKIM-Signature:") == 1
        assert dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: record if name == f"dg1._domainkey.{DOMAIN}.".encode()
                             else None), received["Subject"]
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
    """The README's recipe: Postfix asks the gateway at RCPT time about case and bounce
    addresses and refuses other addresses of its domain itself; other domains of the
    server (other-relay.test) and postmaster@ are not affected."""
    gateway = make_gateway(sqlite_backend, load=False,
                           ingress={"smtp": {"host": "127.0.0.1", "port": GATEWAY_PORT, "hostname": "gw.test"}},
                           outbound={"smtp": {"host": POSTFIX[0], "port": POSTFIX[1], "timeout_seconds": 10}})
    gateway.load(tmp_path, merchants=MERCHANTS, transactions=_transactions(gateway.clock.now()))
    forged = f"case+abcdefgh-m-{'a' * 16}@{DOMAIN}"
    with smtplib.SMTP(*POSTFIX, timeout=60) as client:
        client.ehlo()
        answers = {}
        for rcpt in (forged, f"bounce+abcdefgh-{'b' * 16}@{DOMAIN}", f"nobody@{DOMAIN}", f"delivery@{DOMAIN}",
                     f"postmaster@{DOMAIN}", "anyone@other-relay.test"):
            client.mail("someone@elsewhere.test")
            answers[rcpt] = client.rcpt(rcpt)
            client.rset()
    assert answers[forged][0] == 550, answers[forged]
    assert answers[f"bounce+abcdefgh-{'b' * 16}@{DOMAIN}"][0] == 550
    assert answers[f"nobody@{DOMAIN}"] == (550, b"5.1.1 <nobody@disputes.test>: Recipient address rejected: "
                                                b"No such recipient here")
    for accepted in (f"delivery@{DOMAIN}", f"postmaster@{DOMAIN}", "anyone@other-relay.test"):
        assert answers[accepted][0] == 250, (accepted, answers[accepted])


def _postconf(*args: str) -> str:
    return subprocess.run(["postconf", "-c", str(mailservers.POSTFIX_CONFIG_DIR), *args], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_the_recipe_adds_to_the_site_configuration_and_uses_the_shipped_maps(postfix):
    """What install.sh left: the site's restrictions, relay domains, transport and TLS
    settings are still there (ours first), only stock map types are used, and the maps are
    deploy/postfix's files with the domain and the gateway's address filled in."""
    restrictions = _postconf("-h", "smtpd_recipient_restrictions")
    assert restrictions.startswith("check_recipient_access regexp:")
    assert restrictions.endswith("permit_mynetworks, reject_unauth_destination")
    assert _postconf("-h", "relay_domains") == f"other-relay.test, {DOMAIN}"
    assert _postconf("-h", "transport_maps").endswith(f"texthash:{mailservers.POSTFIX_CONFIG_DIR}/transport")
    assert _postconf("-h", "smtpd_tls_security_level") == "none"
    assert _postconf("-h", "unverified_recipient_reject_code") == "550"
    used = {item.split(":")[0] for key in ("transport_maps", "virtual_alias_maps", "smtpd_recipient_restrictions")
            for item in _postconf("-h", key).replace(",", " ").split() if ":" in item}
    assert used <= {"hash", "regexp", "texthash"}, used
    for name in ("dispute-gateway-recipients.regexp", "dispute-gateway-transport", "dispute-gateway-aliases"):
        shipped = (REPO / "deploy" / "postfix" / name).read_text()
        expected = (shipped.replace(r"disputes\.example\.org", DOMAIN.replace(".", r"\."))
                    .replace("disputes.example.org", DOMAIN).replace("[127.0.0.1]:2525", f"[127.0.0.1]:{GATEWAY_PORT}"))
        assert (mailservers.POSTFIX_CONFIG_DIR / name).read_text() == expected, name
