"""Staff replies and commands; sender checks on case addresses; address forgery at RCPT."""

from __future__ import annotations

import smtplib

import pytest

from gateway import addresses, reports
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF, build_mail


def _open(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 missing",
                            body="Where is TX-1001?"), to=f"delivery@{DOMAIN}")
    sink.wait_count(5)
    with gateway.runtime.database.unit_of_work() as db:
        return reports.list_cases(db)[0]["reference"].lower()


def _address(reference, party):
    return addresses.case_address(reference, party, domain=DOMAIN, keys=KEYS)


def _show(gateway, reference):
    with gateway.runtime.database.unit_of_work() as db:
        return reports.show_case(db, reference)


def test_staff_reply_goes_to_both_signed_with_the_role(gateway, sink):
    reference = _open(gateway, sink)
    before = len(sink.received)
    gateway.send(build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="Re: case",
                            body="Please both confirm the address."), to=_address(reference, "s"), sender=STAFF[0])
    got = sink.wait_count(before + 2)[before:]
    assert {r.to for r in got} == {CUSTOMER, MERCHANT}
    for message in got:
        assert message.header("From").startswith('"Disputes (') and STAFF[0] not in message.raw.decode()


@pytest.mark.parametrize("command, expected", [("#to customer", {CUSTOMER}), ("#TO merchant", {MERCHANT})])
def test_staff_to_command_chooses_the_recipient_and_is_not_relayed(gateway, sink, command, expected):
    reference = _open(gateway, sink)
    before = len(sink.received)
    gateway.send(build_mail(sender=STAFF[1], to=_address(reference, "s"), subject="x",
                            body=f"{command}\nWe are looking into it."), to=_address(reference, "s"), sender=STAFF[1])
    got = sink.wait_count(before + 1)[before:]
    assert {r.to for r in got} == expected
    assert "#to" not in got[0].text().lower() and "We are looking into it." in got[0].text()


def test_staff_note_is_relayed_to_nobody(gateway, sink):
    reference = _open(gateway, sink)
    before = len(sink.received)
    gateway.send(build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="x",
                            body="#note\nMerchant called us."), to=_address(reference, "s"), sender=STAFF[0])
    gateway.settle()
    assert len(sink.received) == before
    assert any(e["kind"] == "staff_note" for e in _show(gateway, reference)["events"])


def test_spoofed_from_on_a_case_address_is_held(gateway, sink):
    reference = _open(gateway, sink)
    before = len(sink.received)
    gateway.send(build_mail(sender="attacker@evil.test", to=_address(reference, "m"), subject="refund denied",
                            body="No refund, go away."), to=_address(reference, "m"), sender="attacker@evil.test")
    got = sink.wait_count(before + 2)[before:]  # the held notice to both staff addresses
    assert {r.to for r in got} == set(STAFF)
    assert sink.to(CUSTOMER)[1:] == []
    case = _show(gateway, reference)
    held = case["held_messages"]
    assert len(held) == 1 and "not the party's registered address" in held[0]["reason"]
    assert held[0]["sender"]["envelope_sender"] == "attacker@evil.test"  # staff see who it says it is


def test_merchant_domain_policy_accepts_a_colleague_whose_domain_is_authenticated(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"authserv_id": "mx.gw.test"})
    reference = _open(gateway, sink)
    gateway.send(build_mail(sender="bob@shop.test", to=_address(reference, "m"), subject="re",
                            body="Colleague here: unverified."), to=_address(reference, "m"), sender="bob@shop.test")
    gateway.settle()
    assert len(sink.to(CUSTOMER)) == 1  # nothing vouches for the domain: held
    passed = {"Authentication-Results": "mx.gw.test; dkim=pass header.d=shop.test; dmarc=pass header.from=shop.test"}
    gateway.send(build_mail(sender="bob@shop.test", to=_address(reference, "m"), subject="re",
                            body="Colleague here: refunded.", headers=passed), to=_address(reference, "m"),
                 sender="bob@shop.test")
    sink.wait(lambda got: len(sink.to(CUSTOMER)) == 2)
    assert "refunded" in sink.to(CUSTOMER)[1].text()


@pytest.mark.parametrize("rcpt", [
    "case+abcdefgh-m-aaaaaaaaaaaaaaaa@disputes.test",  # forged signature
    "nobody@disputes.test",  # unknown local part
    "disputes@elsewhere.test",  # not our domain
    "bounce+abcdefghijkl-aaaaaaaaaaaaaaaa@disputes.test",  # forged VERP address
])
def test_unknown_or_forged_recipients_are_refused_at_rcpt(gateway, rcpt):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        gateway.send(build_mail(sender=CUSTOMER, to=rcpt), to=rcpt)
    assert refused.value.recipients[rcpt][0] == 550


def test_signature_made_with_an_older_key_still_verifies(gateway, sink):
    reference = _open(gateway, sink)
    old = addresses.case_address(reference, "c", domain=DOMAIN, keys=KEYS[1:])
    gateway.send(build_mail(sender=CUSTOMER, to=old, subject="re", body="More details."), to=old)
    sink.wait(lambda got: len(sink.to(MERCHANT)) == 3)


def test_a_case_address_swapped_to_another_party_is_refused(gateway, sink):
    reference = _open(gateway, sink)
    genuine = _address(reference, "c")
    forged = genuine.replace("-c-", "-s-")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        gateway.send(build_mail(sender=CUSTOMER, to=forged), to=forged)


def test_a_staff_reply_relays_only_its_new_text(gateway, sink):
    """Quoting a staff-only notice (diagnostics, addresses) must not carry it to a party."""
    reference = _open(gateway, sink)
    before = len(sink.received)
    body = ("#to merchant\nPlease confirm the delivery address.\n\n"
            "On Thu, Disputes wrote:\n> Diagnostic: 550 5.1.1 <carol@customer.test> unknown\n> Case notes")
    gateway.send(build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="Re", body=body,
                            html="<p>Please confirm the delivery address.</p><blockquote>carol@customer.test</blockquote>"),
                 to=_address(reference, "s"), sender=STAFF[0])
    got = sink.wait_count(before + 1)[before:]
    assert [r.to for r in got] == [MERCHANT]
    assert "Please confirm the delivery address." in got[0].text()
    assert "carol@customer.test" not in got[0].raw.decode().lower() and "Diagnostic" not in got[0].text()


def test_a_command_below_a_greeting_is_refused_not_relayed(gateway, sink):
    reference = _open(gateway, sink)
    before = len(sink.received)
    gateway.send(build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="Re",
                            body="Team,\n#note\nThis merchant is on our watch list."), to=_address(reference, "s"),
                 sender=STAFF[0])
    got = sink.wait_count(before + 1)[before:]
    assert [r.to for r in got] == [STAFF[0]]
    assert "commands must be the first lines" in got[0].text()


def test_a_staff_question_to_the_customer_does_not_stop_chasing_the_merchant(gateway, sink):
    reference = _open(gateway, sink)
    gateway.send(build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="Re",
                            body="#to customer\nCould you send us the tracking number?"), to=_address(reference, "s"),
                 sender=STAFF[0])
    gateway.settle()
    assert _show(gateway, reference)["state"] == "awaiting_merchant"


def test_refused_staff_commands_are_answered(gateway, sink):
    reference = _open(gateway, sink)
    before = len(sink.received)
    gateway.send(build_mail(sender=STAFF[1], to=_address(reference, "s"), subject="Re", body="#release 999"),
                 to=_address(reference, "s"), sender=STAFF[1])
    got = sink.wait_count(before + 1)[before:]
    assert got[0].to == STAFF[1] and "#release 999" in got[0].text()
