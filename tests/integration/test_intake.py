"""Intake: payment cases go to staff, missing type is asked, bad references are answered safely."""

from __future__ import annotations

from gateway import reports
from tests.harness import CUSTOMER, DOMAIN, MERCHANT, STAFF, build_mail, tx_date


def _cases(gateway):
    with gateway.runtime.database.unit_of_work() as db:
        return reports.list_cases(db)


def test_payment_case_goes_straight_to_staff(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"payment@{DOMAIN}", subject="Charged twice",
                            body="I was charged twice for TX-1001."), to=f"payment@{DOMAIN}")
    sink.wait(lambda got: len([r for r in got if r.to == STAFF[0]]) == 2 and sink.to(CUSTOMER))
    staff_mail = sink.to(STAFF[0])
    relay = next(r for r in staff_mail if "Auto-Submitted" not in r.message)
    assert "charged twice" in relay.text().lower() and "-s-" in relay.header("From")
    assert "same business day" in sink.to(CUSTOMER)[0].text()
    assert sink.to(MERCHANT) == []
    assert _cases(gateway)[0]["state"] == "with_staff" and _cases(gateway)[0]["category"] == "payment"


def test_missing_type_is_asked_and_the_answer_continues_the_case(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="Problem with TX-1001",
                            body="The parcel TX-1001 never came."), to=f"disputes@{DOMAIN}")
    question = sink.wait(lambda got: sink.to(CUSTOMER))[0]
    assert "payment or delivery" in question.header("Subject").lower() or "payment" in question.text()
    assert sink.to(MERCHANT) == [] and _cases(gateway)[0]["state"] == "needs_info"
    address = question.header("From").split("<")[1].rstrip(">")
    gateway.send(build_mail(sender=CUSTOMER, to=address, subject="Re: " + question.header("Subject"),
                            body="delivery\n\n> To send it to the right people, reply payment or delivery",
                            in_reply_to=question.header("Message-ID")), to=address)
    sink.wait(lambda got: len(sink.to(MERCHANT)) == 2)
    relay = next(r for r in sink.to(MERCHANT) if "Auto-Submitted" not in r.message)
    assert "The parcel TX-1001 never came." in relay.text()  # the original complaint, not the one-word answer
    assert _cases(gateway)[0]["state"] == "awaiting_merchant"


def test_missing_reference_lists_the_senders_own_transactions(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="Help",
                            body="My parcel never came."), to=f"delivery@{DOMAIN}")
    answer = sink.wait(lambda got: sink.to(CUSTOMER))[0]
    text = answer.text()
    assert "TX-1001" in text and "TX-1002" in text and "TX-2001" not in text
    assert answer.header("From") == f"Disputes <disputes@{DOMAIN}>"
    assert answer.header("Auto-Submitted") == "auto-replied"
    assert "Help" not in answer.header("Subject") and "never came" not in text  # no attacker text echoed
    assert _cases(gateway) == []


def test_someone_elses_reference_is_unknown_and_lists_nothing_of_theirs(gateway, sink):
    gateway.send(build_mail(sender="mallory@evil.test", to=f"delivery@{DOMAIN}", subject="TX-1001",
                            body="TX-1001 please"), to=f"delivery@{DOMAIN}", sender="mallory@evil.test")
    answer = sink.wait(lambda got: sink.to("mallory@evil.test"))[0]
    assert "TX-1001" not in answer.text() and "could not match" in answer.text()
    assert sink.to(MERCHANT) == [] and _cases(gateway) == []


def test_reference_match_is_case_insensitive_on_the_address(gateway, sink):
    gateway.send(build_mail(sender="CAROL@Customer.TEST", to=f"delivery@{DOMAIN}", subject="tx-1002 not delivered",
                            body="Nothing came."), to=f"delivery@{DOMAIN}")
    sink.wait(lambda got: len(sink.to("sav@boutique.test")) == 2)
    notice = next(r for r in sink.to("sav@boutique.test") if "Auto-Submitted" in r.message)
    assert "Nouveau dossier" in notice.text() or "Bonjour" in notice.text()  # the merchant's own locale


def test_no_answer_when_the_from_address_is_not_the_envelope_sender(gateway, sink):
    """Spam with a forged From must not make the gateway write to the forged address (backscatter)."""
    gateway.send(build_mail(sender="victim@innocent.test", to=f"disputes@{DOMAIN}", subject="Hello", body="buy"),
                 to=f"disputes@{DOMAIN}", sender="spammer@botnet.test")
    gateway.settle()
    assert sink.to("victim@innocent.test") == [] and sink.to("spammer@botnet.test") == []


def test_each_party_is_written_to_in_its_own_language(backend, make_gateway, sink, tmp_path):
    gateway = make_gateway(backend, load=False)
    day = tx_date(gateway.clock.now()).date()
    gateway.load(tmp_path, transactions="reference,merchant_id,customer_email,customer_name,amount,currency,"
                                        f"transaction_date,customer_locale\nTX-7001,shop1,claire@client.test,Claire,30,EUR,{day},fr\n")
    gateway.send(build_mail(sender="claire@client.test", to=f"delivery@{DOMAIN}", subject="Colis TX-7001",
                            body="Mon colis TX-7001 n'est jamais arrivé."), to=f"delivery@{DOMAIN}",
                 sender="claire@client.test")
    gateway.settle()
    assert "Votre dossier" in sink.to("claire@client.test")[0].text()
    notice = next(r for r in sink.to(MERCHANT) if "Auto-Submitted" in r.message)
    assert notice.text().startswith("New customer case")  # Shop One's own locale is English


def test_the_details_given_with_the_category_answer_reach_the_merchant(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="TX-1001 problem",
                            body="Problem with TX-1001."), to=f"disputes@{DOMAIN}")
    question = sink.wait(lambda got: sink.to(CUSTOMER))[0]
    address = question.header("From").split("<")[1].rstrip(">")
    gateway.send(build_mail(sender=CUSTOMER, to=address, subject="Re", in_reply_to=question.header("Message-ID"),
                            body="Delivery. The parcel never arrived; tracking number 1Z999 says lost."), to=address)
    sink.wait(lambda got: len(sink.to(MERCHANT)) == 3)  # notice, complaint, details
    texts = [r.text() for r in sink.to(MERCHANT)]
    assert any("Problem with TX-1001." in t for t in texts) and any("1Z999" in t for t in texts)
    assert _cases(gateway)[0]["dispute_type"] == "not_delivered"


def _reply(gateway, to_notice, body: str) -> None:
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="Re: " + to_notice.header("Subject"),
                            body=body, in_reply_to=to_notice.header("Message-ID")), to=f"disputes@{DOMAIN}")
    gateway.settle()


def test_a_mistyped_reference_is_answered_as_unknown_not_missing(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-9999 never arrived",
                            body="My parcel TX-9999 never came."), to=f"delivery@{DOMAIN}")
    answer = sink.wait(lambda got: sink.to(CUSTOMER))[0]
    assert "could not match the reference it mentions" in answer.text()
    assert "does not mention a transaction reference" not in answer.text()


def test_the_first_complaint_travels_with_the_case_opened_by_the_reply_to_our_question(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="Parcel never arrived",
                            body="I ordered a lamp three weeks ago (TX-9999) and it never came."),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    question = sink.to(CUSTOMER)[-1]
    _reply(gateway, question, "Sorry, the right one is TX-1001.")
    case = _cases(gateway)[0]
    assert case["subject"] == "Parcel never arrived"  # hers, not our notice's
    assert case["category"] == "delivery" and case["state"] == "awaiting_merchant"  # the alias she first wrote to
    relays = [r for r in sink.to(MERCHANT) if "Auto-Submitted" not in r.message]
    first = next(r for r in relays if "it never came" in r.text())  # her first complaint reached the merchant
    answer = next(r for r in relays if "right one is TX-1001" in r.text())
    assert len(relays) == 2 and answer.header("In-Reply-To") == first.header("Message-ID")  # threaded in order
    assert "Parcel never arrived" in first.header("Subject")


def test_answers_to_her_own_messages_are_never_held_back_by_the_ladder(gateway, sink, tmp_path, capsys):
    for n in range(7):  # seven messages without a usable reference: five answers an hour, then held back
        gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject=f"Help {n}",
                                body="Where is my parcel?"), to=f"delivery@{DOMAIN}")
    gateway.settle()
    answers = [r for r in sink.to(CUSTOMER) if "transaction" in r.text()]
    assert len(answers) == 5
    held = [r for r in sink.to(STAFF[0]) if "held back" in r.header("Subject")]
    assert len(held) == 1 and CUSTOMER in held[0].text()  # once per hour per address, with what was held
    with gateway.runtime.database.unit_of_work() as db:
        from sqlalchemy import select

        from gateway.models import Inbound

        dispositions = [row.disposition for row in db.scalars(select(Inbound).order_by(Inbound.id))]
    suppressed = [d for d in dispositions if "suppressed" in d]
    assert len(suppressed) == 2 and not any("sender told" in d for d in suppressed)  # in whichever order processed
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 lost",
                            body="My parcel TX-1001 never arrived."), to=f"delivery@{DOMAIN}")
    gateway.settle()
    ack = sink.to(CUSTOMER)[-1]
    assert "case" in ack.text().lower() and "-c-" in ack.header("From")  # her acknowledgement, case address and all
    case = _cases(gateway)[0]
    address = ack.header("From").split("<")[1].rstrip(">")
    gateway.send(build_mail(sender=CUSTOMER, to=address, subject="Re", body="#resolved"), to=address)
    gateway.settle()
    gateway.send(build_mail(sender=CUSTOMER, to=address, subject="Re", body="Actually it is broken."), to=address)
    gateway.settle()
    assert "closed" in sink.to(CUSTOMER)[-1].text()  # her message to the closed case is answered
    assert case["reference"]
