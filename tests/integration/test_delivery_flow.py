"""A delivery dispute opened by email and relayed both ways, over real SMTP."""

from __future__ import annotations

from tests.harness import CUSTOMER, DOMAIN, MERCHANT, STAFF, build_mail


def _open_delivery_case(gateway, sink):
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="Parcel TX-1001 never arrived",
                            body="Hello,\nmy order TX-1001 never arrived.\nCarol", from_name="Carol Client"),
                 to=f"delivery@{DOMAIN}")
    got = sink.wait_count(5)  # merchant notice + relay, customer ack, 2 staff notices
    return got


def test_delivery_case_opens_and_reaches_each_party(gateway, sink):
    got = _open_delivery_case(gateway, sink)
    to_merchant = sink.to(MERCHANT)
    assert len(to_merchant) == 2
    relay = next(r for r in to_merchant if "Auto-Submitted" not in r.message)
    assert "my order TX-1001 never arrived" in relay.text()
    assert relay.header("From").startswith('"Carol Client (customer) via Disputes" <case+')
    assert "-m-" in relay.header("From")
    assert "[Case " in relay.header("Subject")
    ack = sink.to(CUSTOMER)[0]
    assert "-c-" in ack.header("From") and ack.header("Auto-Submitted") == "auto-generated"
    assert "What happens next" in ack.text()
    assert {r.to for r in got if r.to in STAFF} == set(STAFF)
    for message in to_merchant:
        assert CUSTOMER not in message.raw.decode("utf-8", "replace").lower()
    for message in got:
        assert message.mail_from.startswith("bounce+") and message.mail_from.endswith(f"@{DOMAIN}")


def test_merchant_reply_reaches_customer_threaded_and_anonymous(gateway, sink):
    _open_delivery_case(gateway, sink)
    relay = next(r for r in sink.to(MERCHANT) if "Auto-Submitted" not in r.message)
    merchant_address = relay.header("From").split("<")[1].rstrip(">")
    reply = build_mail(sender=MERCHANT, to=merchant_address, subject="Re: " + relay.header("Subject"),
                       body="We shipped it yesterday, tracking 123.\n\nOn Thu, Carol wrote:\n> my order",
                       in_reply_to=relay.header("Message-ID"),
                       html="<p>We shipped it yesterday, tracking <b>123</b>.</p>",
                       attachments=[("label.pdf", "application/pdf", b"%PDF-1.4 label")])
    gateway.send(reply, to=merchant_address, sender=MERCHANT)
    sink.wait(lambda got: len([r for r in got if r.to == CUSTOMER]) == 2)
    ack, relayed = sink.to(CUSTOMER)
    assert "tracking 123" in relayed.text() and "<b>123</b>" in relayed.html()
    assert any(part.get_filename() == "label.pdf" for part in relayed.message.walk())
    assert relayed.header("In-Reply-To") == ack.header("Message-ID")
    assert ack.header("Message-ID") in relayed.header("References")
    assert relayed.header("Subject") == ack.header("Subject")
    assert '"Shop One (merchant) via Disputes"' in relayed.header("From") and "-c-" in relayed.header("From")
    raw = relayed.raw.decode("utf-8", "replace").lower()
    assert MERCHANT not in raw and "shop.test" not in raw


def test_customer_reply_goes_back_to_merchant_in_the_merchant_thread(gateway, sink):
    _open_delivery_case(gateway, sink)
    ack = sink.to(CUSTOMER)[0]
    customer_address = ack.header("From").split("<")[1].rstrip(">")
    gateway.send(build_mail(sender=CUSTOMER, to=customer_address, subject="Re: " + ack.header("Subject"),
                            body="Order number is 555.", in_reply_to=ack.header("Message-ID")),
                 to=customer_address)
    sink.wait(lambda got: len([r for r in got if r.to == MERCHANT]) == 3)
    first_notice, first_relay, second = sink.to(MERCHANT)
    assert "Order number is 555." in second.text()
    assert second.header("In-Reply-To") in (first_relay.header("Message-ID"), first_notice.header("Message-ID"))
    assert CUSTOMER not in second.raw.decode().lower()


def test_second_intake_mail_is_held_until_the_customer_confirms_it_from_her_case_address(gateway, sink):
    _open_delivery_case(gateway, sink)
    merchant_before = len(sink.to(MERCHANT))
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="About TX-1001 again",
                            body="Any news on TX-1001?"), to=f"disputes@{DOMAIN}")
    gateway.settle()
    assert len(sink.to(MERCHANT)) == merchant_before  # the intake is unsigned: not relayed on its word
    question = sink.to(CUSTOMER)[-1]
    assert question.text().startswith("Did you write this message") and "-c-" in question.header("From")
    case_address = question.header("From").split("<")[1].rstrip(">")
    gateway.send(build_mail(sender=CUSTOMER, to=case_address, subject="Re: " + question.header("Subject"),
                            body="Yes, that was me.", in_reply_to=question.header("Message-ID")), to=case_address)
    gateway.settle()
    relayed = [r for r in sink.to(MERCHANT)[merchant_before:] if "Auto-Submitted" not in r.message]
    assert len(relayed) == 1 and "Any news on TX-1001?" in relayed[0].text()  # released, once
    assert "that was me" not in relayed[0].text()  # her answer to us is not passed on
    from gateway import reports
    with gateway.runtime.database.unit_of_work() as db:
        cases = reports.list_cases(db)
    assert len(cases) == 1


def test_an_outlook_style_quote_does_not_carry_a_real_address_across(backend, make_gateway, sink):
    """Real addresses quoted in a reply (From:/To: lines, attributions) are scrubbed from relays."""
    gateway = make_gateway(backend, hygiene={"authserv_id": "mx.gw.test"})
    _open_delivery_case(gateway, sink)
    relay = next(r for r in sink.to(MERCHANT) if "Auto-Submitted" not in r.message)
    assert MERCHANT in relay.header("To")  # its own address: its mail client answers from the right identity
    merchant_address = relay.header("From").split("<")[1].rstrip(">")
    quoted = (f"We refunded you.\n\n-----Original Message-----\nFrom: {relay.header('From')}\n"
              f"Sent: Thursday\nTo: Shop One <{MERCHANT}>\nCc: bob@shop.test\nSubject: {relay.header('Subject')}\n\n"
              f"my order")
    gateway.send(build_mail(sender="bob@shop.test", to=merchant_address, subject="RE: x", body=quoted,
                            html=f"<p>We refunded you.</p><p>To: {MERCHANT}</p>",
                            headers={"Authentication-Results": "mx.gw.test; dkim=pass header.d=shop.test; "
                                                               "dmarc=pass header.from=shop.test"}),
                 to=merchant_address, sender="bob@shop.test")  # a colleague, his domain authenticated
    sink.wait(lambda got: len(sink.to(CUSTOMER)) == 2)
    received = sink.to(CUSTOMER)[1]
    assert "We refunded you." in received.text()
    raw = received.raw.decode().lower()
    assert MERCHANT not in raw and "bob@shop.test" not in raw and "[address hidden]" in received.text()


def test_mail_over_the_large_message_size_is_delivered_from_the_large_queue(backend, make_gateway, sink):
    """An outgoing mail of [workers] large_message_bytes or more is not claimed by the outbound
    queue's threads but handed to the large queue, and still reaches its reader once."""
    from sqlalchemy import func, select

    from gateway.models import Outbox

    gateway = make_gateway(backend, worker_settings={"large_message_bytes": 6000})
    _open_delivery_case(gateway, sink)
    ack = sink.to(CUSTOMER)[0]
    customer_address = ack.header("From").split("<")[1].rstrip(">")
    photo = bytes(range(256)) * 40  # a 10 KB attachment: the relay is over 6000 bytes
    gateway.send(build_mail(sender=CUSTOMER, to=customer_address, subject="Re: " + ack.header("Subject"),
                            body="Here is a photo of the empty box.",
                            attachments=[("box.jpg", "image/jpeg", photo)]), to=customer_address)
    relayed = sink.wait(lambda got: any("empty box" in r.text() for r in got if r.to == MERCHANT))
    assert len([r for r in relayed if r.to == MERCHANT and "empty box" in r.text()]) == 1
    gateway.settle()
    with gateway.runtime.database.unit_of_work() as db:
        large = db.execute(select(Outbox.status, Outbox.attempts).where(func.length(Outbox.raw) >= 6000)).all()
    assert large and all(row == ("sent", 1) for row in large)
