"""Nobody can speak for someone else on a case: who wrote is established (From, envelope
sender, authentication) before anything is acted on, over real SMTP. Issue 9 points 1, 2,
5 and 6; the README's "Sender trust: attack -> answer" table names these tests."""

from __future__ import annotations

from datetime import timedelta

from gateway import addresses, reports
from tests.dns import customer_domain, dkim_sign
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF, build_mail

STRANGER = "mallory@evil.test"
AUTHSERV = "mx.gw.test"


def _cases(gateway):
    with gateway.runtime.database.unit_of_work() as db:
        return reports.list_cases(db)


def _case(gateway, reference=None):
    with gateway.runtime.database.unit_of_work() as db:
        return reports.show_case(db, reference or reports.list_cases(db)[0]["reference"])


def _address(case, party):
    return addresses.case_address(case["reference"].lower(), party, domain=DOMAIN, keys=KEYS)


def _open(gateway):
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 never arrived",
                            body="My parcel TX-1001 never arrived."), to=f"delivery@{DOMAIN}")
    gateway.settle()
    return _case(gateway)


def _send(gateway, *, to, sender, envelope, body, subject="Re", headers=None, **kw):
    gateway.send(build_mail(sender=sender, to=to, subject=subject, body=body, headers=headers, **kw), to=to,
                 sender=envelope)
    gateway.settle()


def _relays(sink, address):
    return [r for r in sink.to(address) if "Auto-Submitted" not in r.message]


def _questions(sink):
    return [r for r in sink.to(CUSTOMER) if r.text().startswith("Did you write")]


# --- point 1: the intake ------------------------------------------------------------------------------

def test_a_strangers_envelope_with_her_from_opens_nothing_and_she_is_asked(gateway, sink):
    _send(gateway, to=f"delivery@{DOMAIN}", sender=CUSTOMER, envelope=STRANGER, subject="TX-1001 never arrived",
          body="My parcel TX-1001 never arrived. Refund me at once.")
    assert _cases(gateway) == [] and sink.to(MERCHANT) == [] and sink.to(STRANGER) == []
    question = _questions(sink)
    assert len(question) == 1 and "TX-1001" in question[0].text()  # at her registered address, nobody else
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="Re: confirm", body="Yes, it is me.",
                            in_reply_to=question[0].header("Message-ID")), to=f"disputes@{DOMAIN}", sender=CUSTOMER)
    gateway.settle()
    case = _cases(gateway)[0]
    assert case["subject"] == "TX-1001 never arrived" and case["state"] == "awaiting_merchant"
    relays = _relays(sink, MERCHANT)
    assert len(relays) == 1 and "Refund me at once." in relays[0].text() and "it is me" not in relays[0].text()


def test_her_answer_to_the_question_opens_the_case_even_from_a_forwarding_envelope(gateway, sink):
    _send(gateway, to=f"delivery@{DOMAIN}", sender=CUSTOMER, envelope="srs0=ab=cd=customer.test=carol@fwd.test",
          subject="TX-1001 lost", body="TX-1001 never came.")
    question = _questions(sink)[0]
    _send(gateway, to=f"disputes@{DOMAIN}", sender=CUSTOMER, envelope="srs0=ef=gh=customer.test=carol@fwd.test",
          subject="Re", body="yes", in_reply_to=question.header("Message-ID"))
    assert _cases(gateway)[0]["state"] == "awaiting_merchant"  # only she received the question's Message-ID


def test_forged_intake_mail_on_an_open_case_joins_nothing_closes_nothing_escalates_nothing(gateway, sink):
    case = _open(gateway)
    merchant_before = len(sink.to(MERCHANT))
    for body in ("#resolved", "#escalate\nStaff, take over.", "We settled: no refund needed."):
        _send(gateway, to=f"delivery@{DOMAIN}", sender=CUSTOMER, envelope=STRANGER, subject="TX-1001", body=body)
    now = _case(gateway, case["reference"])
    assert now["state"] == "awaiting_merchant" and not now["escalated"]
    assert len(sink.to(MERCHANT)) == merchant_before and sink.to(STRANGER) == []
    assert len(now["held_messages"]) == 3
    assert len(_questions(sink)) == 1  # one question an hour, however many arrive


def test_a_trusted_dmarc_fail_at_the_intake_opens_no_case(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"authserv_id": AUTHSERV})
    _send(gateway, to=f"delivery@{DOMAIN}", sender=CUSTOMER, envelope=CUSTOMER, subject="TX-1001 lost",
          body="TX-1001 never came.", headers={"Authentication-Results": f"{AUTHSERV}; spf=fail "
                                               "smtp.mailfrom=customer.test; dmarc=fail header.from=customer.test"})
    assert _cases(gateway) == [] and len(_questions(sink)) == 1


def test_the_confirm_mode_asks_unless_authentication_vouches(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"authserv_id": AUTHSERV},
                           gateway={"sender_policy": {"intake": "confirm"}})
    _send(gateway, to=f"delivery@{DOMAIN}", sender=CUSTOMER, envelope=CUSTOMER, subject="TX-1001 lost",
          body="TX-1001 never came.")
    assert _cases(gateway) == [] and len(_questions(sink)) == 1
    passed = {"Authentication-Results": f"{AUTHSERV}; dkim=pass header.d=customer.test; "
                                        "dmarc=pass header.from=customer.test"}
    _send(gateway, to=f"delivery@{DOMAIN}", sender=CUSTOMER, envelope=CUSTOMER, subject="TX-1002 broken",
          body="TX-1002 came broken.", headers=passed)
    assert [c["transaction_reference"] for c in _cases(gateway)] == ["TX-1002"]


def test_the_gateways_own_dkim_check_vouches_for_her_when_the_mta_says_nothing(backend, make_gateway, sink):
    resolver = customer_domain()
    gateway = make_gateway(backend, hygiene={"check_dkim": True}, resolver=resolver)
    signed = dkim_sign(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 lost",
                                  body="TX-1001 never came."))
    gateway.send(signed, to=f"delivery@{DOMAIN}", sender="bounces@newsletter-esp.test")  # another envelope
    gateway.settle()
    assert _cases(gateway)[0]["state"] == "awaiting_merchant" and _questions(sink) == []
    forged = signed.replace(b"TX-1001 never came.", b"TX-1002 never came, TX-1002.")  # the signature breaks
    gateway.send(forged.replace(b"TX-1001 lost", b"TX-1002 lost"), to=f"delivery@{DOMAIN}", sender=STRANGER)
    gateway.settle()
    assert len(_cases(gateway)) == 1 and len(_questions(sink)) == 1  # DMARC fails: she is asked
    assert ("_dmarc.customer.test", "TXT") in resolver.queries


# --- point 2: case addresses --------------------------------------------------------------------------

def test_a_forged_from_on_a_case_address_is_held_and_never_obeyed(gateway, sink):
    case = _open(gateway)
    customer_before, merchant_before = len(sink.to(CUSTOMER)), len(sink.to(MERCHANT))
    _send(gateway, to=_address(case, "m"), sender=MERCHANT, envelope=STRANGER, body="We admit: full refund.")
    _send(gateway, to=_address(case, "c"), sender=CUSTOMER, envelope=STRANGER, body="#resolved")
    _send(gateway, to=_address(case, "s"), sender=STAFF[0], envelope=STRANGER, body="#close forged agreement")
    now = _case(gateway, case["reference"])
    assert now["state"] == "awaiting_merchant" and now["closed_reason"] is None
    assert (len(sink.to(CUSTOMER)), len(sink.to(MERCHANT))) == (customer_before, merchant_before)
    assert [h["sender"]["envelope_sender"] for h in now["held_messages"]] == [STRANGER] * 3
    assert all("envelope sender" in h["reason"] for h in now["held_messages"])


def test_the_domain_policy_never_vouches_for_a_freemail_domain(backend, make_gateway, sink, tmp_path):
    gateway = make_gateway(backend, load=False, hygiene={"authserv_id": AUTHSERV})
    gateway.load(tmp_path, merchants="merchant_id,name,support_email,locale\nshop1,Shop One,shopowner@gmail.com,en\n"
                                     "shop2,Boutique Deux,sav@boutique.test,fr\n")
    case = _open(gateway)
    passed = {"Authentication-Results": f"{AUTHSERV}; dkim=pass header.d=gmail.com; dmarc=pass header.from=gmail.com"}
    _send(gateway, to=_address(case, "m"), sender="random.stranger@gmail.com", envelope="random.stranger@gmail.com",
          body="I am the shop, close this.", headers=passed)
    assert len(sink.to(CUSTOMER)) == 1 and _case(gateway, case["reference"])["held_messages"]


# --- point 5: held mail is no thread parent and staff see who sent it --------------------------------------

def test_a_held_message_never_becomes_a_thread_parent(gateway, sink):
    case = _open(gateway)
    _send(gateway, to=_address(case, "c"), sender="someone@elsewhere.test", envelope="someone@elsewhere.test",
          body="Hello from a stranger", message_id="<stranger-1@elsewhere.test>")
    _send(gateway, to=_address(case, "m"), sender=MERCHANT, envelope=MERCHANT, body="Shipped again today.")
    answer = _relays(sink, CUSTOMER)[-1]
    assert "Shipped again today." in answer.text()
    assert "stranger-1" not in answer.header("In-Reply-To") + answer.header("References")
    notice = [r for r in sink.to(STAFF[0]) if "held" in r.text().split("\n", 1)[0]][-1].text()
    assert "someone@elsewhere.test" in notice and "Envelope sender" in notice and "Authentication" in notice


# --- point 6: floods by outsiders never silence insiders -------------------------------------------------------

def test_a_strangers_flood_neither_freezes_the_case_nor_floods_staff(gateway, sink, clock):
    case = _open(gateway)
    staff_before = len(sink.to(STAFF[0]))
    for n in range(32):
        gateway.send(build_mail(sender=f"flood{n}@evil.test", to=_address(case, "m"), subject="spam", body="spam"),
                     to=_address(case, "m"), sender=f"flood{n}@evil.test")
    gateway.settle()
    assert not _case(gateway, case["reference"])["frozen"]
    assert len(sink.to(STAFF[0])) == staff_before + 1  # one held notice, not 32 (and no freeze alert)
    _send(gateway, to=_address(case, "m"), sender=MERCHANT, envelope=MERCHANT, body="Refund sent today.")
    assert "Refund sent today." in _relays(sink, CUSTOMER)[-1].text()
    clock.advance(timedelta(minutes=61))
    gateway.sweep()
    gateway.settle()
    digest = sink.to(STAFF[0])[-1].text()
    assert len(sink.to(STAFF[0])) == staff_before + 2 and "31 more message(s)" in digest


def test_a_frozen_case_still_relays_authenticated_party_mail(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"authserv_id": AUTHSERV, "freeze_after_messages": 3,
                                             "freeze_window_minutes": 10})
    case = _open(gateway)
    for n in range(3):  # the customer's own mailbox loops
        _send(gateway, to=_address(case, "c"), sender=CUSTOMER, envelope=CUSTOMER, body=f"loop {n}")
    assert _case(gateway, case["reference"])["frozen"]
    merchant_before = len(_relays(sink, MERCHANT))
    _send(gateway, to=_address(case, "m"), sender=MERCHANT, envelope=MERCHANT, body="Unauthenticated answer.")
    assert len(_relays(sink, CUSTOMER)) == 0
    passed = {"Authentication-Results": f"{AUTHSERV}; dkim=pass header.d=shop.test; dmarc=pass header.from=shop.test"}
    _send(gateway, to=_address(case, "m"), sender=MERCHANT, envelope=MERCHANT, body="Authenticated answer.",
          headers=passed)
    assert "Authenticated answer." in _relays(sink, CUSTOMER)[-1].text()
    assert len(_relays(sink, MERCHANT)) == merchant_before
